"""indexes that keep hot requests independent of history: a counter's current ticket, a
service's latest completions, today's calls, a gateway's latest sent texts

Revision ID: e6f2b4d8a844
Revises: d5e1a3c7f733
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e6f2b4d8a844'
down_revision = 'd5e1a3c7f733'
branch_labels = None
depends_on = None

# (index, table, columns): see core/models.py for the query each one serves.
INDEXES = (
    ('ix_ticket_counter', 'ticket', ['counter_id', 'status']),
    ('ix_ticket_service_finished', 'ticket', ['service_id', 'status', 'finished_at']),
    ('ix_ticket_event_kind_at', 'ticket_event', ['kind', 'at']),
    ('ix_outbox_sent_by', 'outbox', ['sent_by', 'sent_at']),  # see messaging/models.py
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
