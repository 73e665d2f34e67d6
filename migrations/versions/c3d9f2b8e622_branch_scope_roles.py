"""branch scope: staff in several branches, roles, texts by number

Revision ID: c3d9f2b8e622
Revises: b7c1e0a4d511
Create Date: 2026-11-29 16:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3d9f2b8e622'
down_revision = 'b7c1e0a4d511'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_user_branch',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_staff_user_branch_branch_id_branch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_staff_user_branch_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'branch_id', name=op.f('pk_staff_user_branch'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_to', ['to', 'id'], unique=False)
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_customer', ['customer_id', 'id'], unique=False)
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_customer', ['customer_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index('ix_appointment_customer')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_customer')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_to')
    op.drop_table('staff_user_branch')
