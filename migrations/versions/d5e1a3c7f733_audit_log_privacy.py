"""audit log; personal data: numbers may go (anonymised), indexes of rows still naming someone

Revision ID: d5e1a3c7f733
Revises: c3d9f2b8e622
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5e1a3c7f733'
down_revision = 'c3d9f2b8e622'
branch_labels = None
depends_on = None

# (table, column the retention period counts from, the rows that still name someone)
IDENTIFIED = (
    ('customer', 'created_at', 'phone IS NOT NULL OR name IS NOT NULL'),
    ('ticket', 'arrived_at', 'customer_id IS NOT NULL'),
    ('appointment', 'starts_at', 'customer_id IS NOT NULL'),
    ('outbox', 'created_at', '"to" IS NOT NULL'),
    ('inbox', 'received_at', 'sender IS NOT NULL'),
    ('survey_response', 'created_at', 'phone IS NOT NULL'),
    ('reschedule_offer', 'created_at', 'phone IS NOT NULL'),
)
# (table, column, its length) that become NULL once anonymised
NULLABLE = (('outbox', 'to', 16), ('inbox', 'sender', 24), ('survey_response', 'phone', 16),
            ('reschedule_offer', 'phone', 16))
# Rows pointing at outbox and inbox, which SQLite rebuilds here (see _set_aside).
POINTING = ('ticket_notice', 'survey_response', 'inbox_part')


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


def upgrade():
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=True),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=80), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_audit_entry_branch_id_branch')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entry_branch', ['branch_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_entry_action', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_entry_at', ['at'], unique=False)

    moved = _set_aside(POINTING)
    for table, column, length in NULLABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=length), nullable=True)
    _put_back(moved)
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_sender', ['sender', 'id'], unique=False)
    with op.batch_alter_table('inbox_part', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_part_received', ['received_at'], unique=False)
    with op.batch_alter_table('inbox_quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_quarantine_received', ['received_at'], unique=False)
    for table, column, condition in IDENTIFIED:
        op.create_index(f'ix_{table}_identified', table, [column], unique=False,
                        sqlite_where=sa.text(condition), postgresql_where=sa.text(condition))


def downgrade():
    for table, _column, _condition in IDENTIFIED:
        op.drop_index(f'ix_{table}_identified', table_name=table)
    with op.batch_alter_table('inbox_quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_quarantine_received')
    with op.batch_alter_table('inbox_part', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_part_received')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_sender')
    # Rows anonymised meanwhile have no number to put back: an empty one, which names nobody.
    for table, column, _length in NULLABLE:
        op.execute(sa.text(f'UPDATE {table} SET "{column}" = \'\' WHERE "{column}" IS NULL'))
    moved = _set_aside(POINTING)
    for table, column, length in NULLABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=length), nullable=False)
    _put_back(moved)
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_at')
        batch_op.drop_index('ix_audit_entry_action')
        batch_op.drop_index('ix_audit_entry_branch')
    op.drop_table('audit_entry')
