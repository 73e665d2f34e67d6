"""texting never stops: kinds, quarantine, modem identity

Revision ID: 9650f0e2e9f1
Revises: 96d00c786a7d
Create Date: 2026-11-29 15:23:46.183776

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9650f0e2e9f1'
down_revision = '96d00c786a7d'
branch_labels = None
depends_on = None


def _set_aside(tables):
    """SQLite changes a column by rebuilding its table (copy, drop, rename) and, enforcing foreign
    keys, refuses to drop a table that other rows point at: an installation that had received a
    long reply, or had a notice or a survey bound to a text, could not upgrade. The rows pointing
    at the tables rebuilt here wait in temporary tables meanwhile (`tables`: nothing points at
    them in turn) and _put_back returns them unchanged, in the same transaction."""
    if op.get_bind().dialect.name != "sqlite":
        return ()
    for table in tables:
        op.execute(f'CREATE TEMP TABLE "aside_{table}" AS SELECT * FROM "{table}"')
        op.execute(f'DELETE FROM "{table}"')
    return tables


def _put_back(tables):
    """The rows set aside, in the columns their tables still have."""
    for table in tables:
        columns = ", ".join(f'"{c["name"]}"' for c in sa.inspect(op.get_bind()).get_columns(table))
        op.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM "aside_{table}"')
        op.execute(f'DROP TABLE "aside_{table}"')


# Rows pointing at inbox and outbox, which SQLite rebuilds here (see _set_aside).
POINTING = ('inbox_part', 'ticket_notice', 'survey_response')


def upgrade():
    moved = _set_aside(POINTING)
    op.create_table('inbox_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('gateway', sa.String(length=80), nullable=True),
    sa.Column('memory', sa.String(length=4), nullable=True),
    sa.Column('sender', sa.String(length=24), nullable=True),
    sa.Column('pdu', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_inbox_quarantine_branch_id_branch')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_quarantine'))
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        batch_op.alter_column('outcome', existing_type=sa.VARCHAR(length=40), type_=sa.String(length=80),
                              existing_nullable=True)
        batch_op.alter_column('dedupe_key',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=80),
               existing_nullable=False)

    with op.batch_alter_table('inbox_part', schema=None) as batch_op:
        batch_op.add_column(sa.Column('surrogates', sa.JSON(), nullable=True))
        batch_op.alter_column('dedupe_key',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=80),
               existing_nullable=False)

    with op.batch_alter_table('message_template', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.VARCHAR(length=20),
               type_=sa.String(length=40),
               existing_nullable=False)

    with op.batch_alter_table('modem_status', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_in_a_row', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reconnects', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('cooling_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('imei', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('imsi', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('refused_pin', sa.String(length=64), nullable=True))
        batch_op.alter_column('port',
               existing_type=sa.VARCHAR(length=200),
               type_=sa.Text(),
               existing_nullable=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_branch', ['branch_id', 'id'], unique=False)
        batch_op.create_index('ix_outbox_created', ['created_at'], unique=False)
        batch_op.create_index('ix_outbox_sent', ['sent_at'], unique=False)
        batch_op.alter_column('kind',
               existing_type=sa.VARCHAR(length=20),
               type_=sa.String(length=40),
               existing_nullable=False)

    with op.batch_alter_table('ticket_notice', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.VARCHAR(length=20),
               type_=sa.String(length=40),
               existing_nullable=False)

    _put_back(moved)


def downgrade():
    moved = _set_aside(POINTING)
    with op.batch_alter_table('ticket_notice', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.String(length=40),
               type_=sa.VARCHAR(length=20),
               existing_nullable=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_sent')
        batch_op.drop_index('ix_outbox_created')
        batch_op.drop_index('ix_outbox_branch')
        batch_op.alter_column('kind',
               existing_type=sa.String(length=40),
               type_=sa.VARCHAR(length=20),
               existing_nullable=False)

    with op.batch_alter_table('modem_status', schema=None) as batch_op:
        batch_op.alter_column('port',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=200),
               existing_nullable=False)
        batch_op.drop_column('refused_pin')
        batch_op.drop_column('imsi')
        batch_op.drop_column('imei')
        batch_op.drop_column('cooling_until')
        batch_op.drop_column('reconnects')
        batch_op.drop_column('failed_in_a_row')
        batch_op.drop_column('state_since')

    with op.batch_alter_table('message_template', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.String(length=40),
               type_=sa.VARCHAR(length=20),
               existing_nullable=False)

    with op.batch_alter_table('inbox_part', schema=None) as batch_op:
        batch_op.alter_column('dedupe_key',
               existing_type=sa.String(length=80),
               type_=sa.VARCHAR(length=64),
               existing_nullable=False)
        batch_op.drop_column('surrogates')

    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.alter_column('outcome', existing_type=sa.String(length=80), type_=sa.VARCHAR(length=40),
                              existing_nullable=True)
        batch_op.alter_column('dedupe_key',
               existing_type=sa.String(length=80),
               type_=sa.VARCHAR(length=64),
               existing_nullable=False)
        batch_op.drop_column('claimed_at')

    op.drop_table('inbox_quarantine')
    _put_back(moved)
