"""the customers still named, in the order the retention job looks through them: (created_at, id),
so that each of its stretches is a range of the index even when thousands of customers were
created in one instant (an import)

Revision ID: b7d3f1a9c524
Revises: c5e9a1d3f720
Create Date: 2026-12-01 19:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7d3f1a9c524'
down_revision = 'c5e9a1d3f720'
branch_labels = None
depends_on = None

NAMED = 'phone IS NOT NULL OR name IS NOT NULL'


def _index(columns):
    op.drop_index('ix_customer_identified', table_name='customer')
    op.create_index('ix_customer_identified', 'customer', columns, unique=False,
                    sqlite_where=sa.text(NAMED), postgresql_where=sa.text(NAMED))


def upgrade():
    _index(['created_at', 'id'])


def downgrade():
    _index(['created_at'])
