"""A branch's counters: a name (unique in the branch) and the services they call tickets of. The
counters page, /api/v1/admin/counters and `flask counter` change them through create(), update()
and delete(). A counter that ever served a ticket stays: the ticket's history names it. Rename
it instead."""
from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..database import write_transaction
from ..errors import Conflict, ValidationError
from ..extensions import db
from ..models import Branch, Counter, Service, Ticket
from . import FieldErrors
from .fields import as_object, chosen, one_line

NAME_LENGTH = 20
FIELDS = ("name", "services")
READ_ONLY = ("id", "branch", "is_open")  # shown by describe(); is_open is the console's


def in_order(branch: Branch) -> list[Counter]:
    return db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id)).all()


def describe(counter: Counter) -> dict:
    """A counter as the JSON API shows it, and as create() and update() read it back."""
    return {"id": counter.id, "branch": counter.branch_id, "name": counter.name,
            "services": sorted(s.id for s in counter.services), "is_open": counter.is_open}


def has_served(counter: Counter) -> bool:
    """Whether a ticket names the counter. (A ticket moved on from it is still in its history:
    the database refuses that delete, see delete().)"""
    return db.session.scalar(select(Ticket.id).where(Ticket.counter_id == counter.id).limit(1)) is not None


def _taken_message(branch: Branch, name: str) -> str:
    return gettext("%(branch)s has a counter %(name)s already.", branch=branch.name, name=name)


def _name_taken(session, branch: Branch, name: str, counter: Counter | None) -> bool:
    found = session.scalar(select(Counter.id).where(Counter.branch_id == branch.id, Counter.name == name))
    return found is not None and (counter is None or found != counter.id)


def _validated(session, branch: Branch, counter: Counter | None, data: dict) -> tuple[str | None, list | None]:
    """(the new name or None if not given, the services or None if not given), every field read at once."""
    errors, name, services = FieldErrors(), None, None
    if counter is None or "name" in data:
        name = one_line(errors, "name", data.get("name"), NAME_LENGTH)
        if name is not None and _name_taken(session, branch, name, counter):
            errors.add("name", _taken_message(branch, name))
    if counter is None or "services" in data:
        mine = {s.id: s for s in session.scalars(select(Service).where(Service.branch_id == branch.id))}
        services = chosen(errors, "services", data.get("services", []), mine,
                          gettext("Choose services of this branch."))
    errors.raise_if_any()
    return name, services


def _refuse_if_name_taken(branch: Branch, name) -> None:
    """After a unique violation: the same name created meanwhile by someone else is a field error."""
    name = name.strip() if isinstance(name, str) else None
    if name and _name_taken(db.session, branch, name, None):
        message = _taken_message(branch, name)
        raise ValidationError(message, {"name": message}) from None


def create(branch: Branch, data) -> Counter:
    data = as_object(data, FIELDS, READ_ONLY)
    try:
        with write_transaction() as session:
            branch = session.get(Branch, branch.id)
            name, services = _validated(session, branch, None, data)
            counter = Counter(branch_id=branch.id, name=name, services=services)
            session.add(counter)
            session.flush()
            counter_id = counter.id
    except IntegrityError:
        _refuse_if_name_taken(branch, data.get("name"))
        raise
    audit.record("settings.changed", target=f"counter:{counter_id}", branch_id=branch.id,
                 detail={"counter": name, "created": True})
    return db.session.get(Counter, counter_id)


def update(counter: Counter, data) -> Counter:
    """Change the fields given; nothing at all when one of them is refused."""
    data = as_object(data, FIELDS, READ_ONLY)
    try:
        with write_transaction() as session:
            row = session.get(Counter, counter.id, with_for_update=True)
            name, services = _validated(session, row.branch, row, data)
            changed = []
            if name is not None and name != row.name:
                row.name = name
                changed.append("name")
            if services is not None and set(services) != set(row.services):
                row.services = services
                changed.append("services")
            branch_id, name = row.branch_id, row.name
    except IntegrityError:
        _refuse_if_name_taken(counter.branch, data.get("name"))
        raise
    if changed:
        audit.record("settings.changed", target=f"counter:{counter.id}", branch_id=branch_id,
                     detail={"counter": name, "fields": changed})
    return db.session.get(Counter, counter.id)


def delete(counter: Counter) -> None:
    """Remove a counter that never served a ticket; Conflict for one that did or is open now."""
    name, branch_id, counter_id = counter.name, counter.branch_id, counter.id
    served = Conflict(gettext("Counter %(name)s has served tickets and stays in their history: "
                              "rename it instead.", name=name), {"counter": "has served"})
    if counter.is_open:
        raise Conflict(gettext("Counter %(name)s is open: close it at the console first.", name=name),
                       {"counter": "open"})
    if has_served(counter):
        raise served
    try:
        with write_transaction() as session:
            session.delete(session.get(Counter, counter_id))
    except IntegrityError:  # a ticket's history still names it (a ticket moved on to another counter)
        raise served from None
    audit.record("settings.changed", target=f"counter:{counter_id}", branch_id=branch_id,
                 detail={"counter": name, "deleted": True})
