"""appointment: the customer's own link (access token) for the self-booking manage page

Revision ID: b7e3d1f5a2c8
Revises: f4b8d2c6a915
Create Date: 2026-12-01 10:00:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e3d1f5a2c8'
down_revision = 'f4b8d2c6a915'
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


# Rows pointing at appointment, which SQLite rebuilds here (see _set_aside).
POINTING = ('reschedule_offer',)


def upgrade():
    moved = _set_aside(POINTING)
    # Nullable first: appointments booked before this upgrade get a token each, then the column
    # becomes required and unique (as core.models.new_access_token makes them: 24 URL-safe characters).
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_token', sa.String(length=32), nullable=True))

    appointment = sa.table('appointment', sa.column('id', sa.Integer()), sa.column('access_token', sa.String()))
    connection = op.get_bind()
    ids = connection.execute(sa.select(appointment.c.id).where(appointment.c.access_token.is_(None))).scalars().all()
    for ident in ids:
        connection.execute(appointment.update().where(appointment.c.id == ident)
                           .values(access_token=secrets.token_urlsafe(18)))

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.alter_column('access_token', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_appointment_access_token'), ['access_token'])
    _put_back(moved)


def downgrade():
    moved = _set_aside(POINTING)
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_appointment_access_token'), type_='unique')
        batch_op.drop_column('access_token')
    _put_back(moved)
