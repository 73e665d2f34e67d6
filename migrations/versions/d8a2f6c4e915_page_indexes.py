"""indexes that keep the staff pages and their filters independent of history: a branch's newest
tickets, of one state, of one service (/api/v1/tickets); a branch's texts sent in the last hour
(the outbox page's send rate), of one status or lane (the outbox page, /api/v1/outbox)

Revision ID: d8a2f6c4e915
Revises: c9a4e2f6b1d3
Create Date: 2026-12-01 06:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd8a2f6c4e915'
down_revision = 'c9a4e2f6b1d3'
branch_labels = None
depends_on = None

# (index, table, columns): see core/models.py and messaging/models.py for the query each one serves.
INDEXES = (
    ('ix_ticket_branch_arrived', 'ticket', ['branch_id', 'arrived_at', 'id']),
    ('ix_ticket_branch_status_arrived', 'ticket', ['branch_id', 'status', 'arrived_at', 'id']),
    ('ix_ticket_service_arrived', 'ticket', ['service_id', 'arrived_at', 'id']),
    ('ix_outbox_branch_sent', 'outbox', ['branch_id', 'sent_at']),
    ('ix_outbox_branch_status', 'outbox', ['branch_id', 'status', 'id']),
    ('ix_outbox_branch_priority', 'outbox', ['branch_id', 'priority', 'id']),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
