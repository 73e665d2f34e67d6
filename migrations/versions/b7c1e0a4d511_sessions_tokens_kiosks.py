"""sessions, tokens, kiosks: session epoch per staff user, API and kiosk tokens, failed logins

Revision ID: b7c1e0a4d511
Revises: 9650f0e2e9f1
Create Date: 2026-11-29 16:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7c1e0a4d511'
down_revision = '9650f0e2e9f1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_api_token_secret_hash'))
    )
    op.create_table('api_token_branch',
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_api_token_branch_branch_id_branch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['token_id'], ['api_token.id'], name=op.f('fk_api_token_branch_token_id_api_token'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_id', 'branch_id', name=op.f('pk_api_token_branch'))
    )
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=40), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_address', ['address', 'at'], unique=False)
        batch_op.create_index('ix_login_failure_at', ['at'], unique=False)
        batch_op.create_index('ix_login_failure_username', ['username', 'at'], unique=False)

    # Existing rows get an empty epoch; sessions made before this upgrade carry none and end.
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.String(length=24), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')

    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failure_username')
        batch_op.drop_index('ix_login_failure_at')
        batch_op.drop_index('ix_login_failure_address')

    op.drop_table('login_failure')
    op.drop_table('api_token_branch')
    op.drop_table('api_token')
