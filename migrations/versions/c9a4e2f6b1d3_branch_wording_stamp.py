"""branch: a stamp that changes with every change of the branch's wording of its texts

Revision ID: c9a4e2f6b1d3
Revises: b7e3d1f5a2c8
Create Date: 2026-12-02 09:00:00.000000

"""
import uuid

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c9a4e2f6b1d3'
down_revision = 'b7e3d1f5a2c8'
branch_labels = None
depends_on = None


def upgrade():
    # A constant default: SQLite adds the column in place (no rebuild of a table others point at).
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wording_stamp', sa.String(length=32), server_default='', nullable=False))
    # Each branch its own stamp, as new branches get: texts cache a branch's wording by it.
    branch = sa.table('branch', sa.column('id', sa.Integer), sa.column('wording_stamp', sa.String))
    bind = op.get_bind()
    for (branch_id,) in bind.execute(sa.select(branch.c.id)).all():
        bind.execute(branch.update().where(branch.c.id == branch_id).values(wording_stamp=uuid.uuid4().hex))


def downgrade():
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('wording_stamp')
