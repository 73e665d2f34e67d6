"""the rows of history that name a row the app deletes, found by an index: the database's own
foreign-key check on a deleted counter (ticket_event.counter_id) or a text removed unsent
(ticket_notice.outbox_id, survey_response.outbox_id) walked every row of the table without one

Revision ID: e3a7c1d9b846
Revises: b7d3f1a9c524
Create Date: 2026-12-01 19:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e3a7c1d9b846'
down_revision = 'b7d3f1a9c524'
branch_labels = None
depends_on = None

INDEXES = (("ix_ticket_event_counter", "ticket_event", "counter_id"),
           ("ix_ticket_notice_outbox", "ticket_notice", "outbox_id"),
           ("ix_survey_response_outbox", "survey_response", "outbox_id"))


def upgrade():
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade():
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)
