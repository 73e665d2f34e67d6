"""indexes that keep the staff pages' filters independent of history: a branch's texts of one
status or lane (the outbox page, /api/v1/outbox), a branch's tickets of one state or service
(/api/v1/tickets), each read newest first

Revision ID: e4c7a1b9d302
Revises: d8a2f6c4e915
Create Date: 2026-12-01 06:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e4c7a1b9d302'
down_revision = 'd8a2f6c4e915'
branch_labels = None
depends_on = None

# (index, table, columns): see core/models.py and messaging/models.py for the query each one serves.
INDEXES = (
    ('ix_outbox_branch_status', 'outbox', ['branch_id', 'status', 'id']),
    ('ix_outbox_branch_priority', 'outbox', ['branch_id', 'priority', 'id']),
    ('ix_ticket_branch_status_arrived', 'ticket', ['branch_id', 'status', 'arrived_at', 'id']),
    ('ix_ticket_service_arrived', 'ticket', ['service_id', 'arrived_at', 'id']),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
