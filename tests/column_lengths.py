"""Every string the code writes must fit its column. SQLite stores an oversize string silently;
PostgreSQL refuses the whole transaction (a 21-character text kind once stopped every C and X
reply there). This check runs on every flush of every test, on either database."""
from sqlalchemy import String, event, inspect
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
