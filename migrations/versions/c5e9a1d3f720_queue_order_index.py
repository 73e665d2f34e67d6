"""a service's waiting tickets in queue order: the front of a queue read without numbering it all
(core.queries.positions with up_to, after every call and completion)

Revision ID: c5e9a1d3f720
Revises: a3c7e1f9b262
Create Date: 2026-12-01 12:10:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e9a1d3f720'
down_revision = 'a3c7e1f9b262'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_ticket_service_queue_order', 'ticket',
                    ['service_id', 'status', sa.desc(sa.column('priority')), 'arrived_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_ticket_service_queue_order', table_name='ticket')
