"""an index for two filters together: a service's tickets of one state
(/api/v1/tickets?service=A&status=cancelled)

Revision ID: a3c7e1f9b262
Revises: d8a2f6c4e915
Create Date: 2026-12-01 09:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a3c7e1f9b262'
down_revision = 'd8a2f6c4e915'
branch_labels = None
depends_on = None

# (index, table, columns): see core/models.py for the query it serves.
INDEXES = (
    ('ix_ticket_service_status_arrived', 'ticket', ['service_id', 'status', 'arrived_at', 'id']),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
