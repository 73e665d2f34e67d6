"""Every string the code writes must fit its column. SQLite stores an oversize string silently;
PostgreSQL refuses the whole transaction (a 21-character text kind once stopped every C and X
reply there). This check runs on every flush and every INSERT or UPDATE statement of every
test, on either database."""
from sqlalchemy import String, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


class TooLong(AssertionError):
    pass


def _check(session, _context, _instances):
    for obj in list(session.new) + list(session.dirty):
        mapper = inspect(obj).mapper
        for column in mapper.columns:
            if not isinstance(column.type, String) or not column.type.length:
                continue
            value = getattr(obj, mapper.get_property_by_column(column).key, None)
            if isinstance(value, str) and len(value) > column.type.length:
                raise TooLong(f"{mapper.class_.__name__}.{column.key} holds {column.type.length} characters; "
                              f"the code wrote {len(value)}: {value[:60]!r}")


def install():
    if not event.contains(Session, "before_flush", _check):
        event.listen(Session, "before_flush", _check)
    install_for_statements()


def _check_statement(_connection, _cursor, statement, _parameters, context, _many):
    """The same rule for rows written as statements, not flushed as objects (a ticket, its event,
    a text, a customer): every bound value of a sized string type, in an INSERT or an UPDATE."""
    compiled = getattr(context, "compiled", None)
    if compiled is None or ("INSERT INTO" not in statement and not statement.lstrip().startswith("UPDATE")):
        return
    for parameters in context.compiled_parameters or ():
        for name, bind in compiled.binds.items():
            length = getattr(bind.type, "length", None)
            value = parameters.get(bind.key, parameters.get(name))
            if isinstance(bind.type, String) and length and isinstance(value, str) and len(value) > length:
                raise TooLong(f"{bind.key} holds {length} characters; the code wrote {len(value)}: {value[:60]!r}")


def install_for_statements():
    if not event.contains(Engine, "before_cursor_execute", _check_statement):
        event.listen(Engine, "before_cursor_execute", _check_statement)
