"""What every report reads from a request: the branch (within reach: core/scope.py), the range of
its days, and perhaps one service, counter or staff member. Every bad field is named at once (400);
a branch out of reach is not found (404), as everywhere."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from core import clock, scope
from core.errors import ValidationError
from core.extensions import db
from core.models import Branch, Counter, Service, StaffUser
from core.reports import GROUPINGS, MAX_DAYS, Period, Selection
from core.settings import FieldErrors
from core.web import arg_number, day

DEFAULT_DAYS = 28  # a page opened without a range shows the last four weeks, today included


@dataclass(frozen=True)
class Asked:
    """A report request, read and checked."""
    branch: Branch
    period: Period
    selection: Selection
    service: Service | None = None
    counter: Counter | None = None
    staff: StaffUser | None = None

    def query(self, **extra) -> dict:
        """The request's arguments, for links to the same report (another format, a breakdown)."""
        found = {"branch": self.branch.id, "from": self.period.first_day.isoformat(),
                 "to": self.period.last_day.isoformat()}
        found.update({name: value for name, value in (("service", self.service and self.service.code),
                                                      ("counter", self.counter and self.counter.id),
                                                      ("staff", self.staff and self.staff.id)) if value})
        return {**found, **extra}


def read(args, *, required: bool = True) -> Asked:
    """The request's branch, days and selection. `required`: from and to must be given (the API);
    otherwise the last DEFAULT_DAYS days are the default (a page opened from the menu)."""
    branch = scope.branch(arg_number("branch", args=args))
    errors = FieldErrors()
    first, last = _days(branch, args, errors, required)
    service = _service(branch, args, errors)
    counter = _counter(branch, args, errors)
    staff = _staff(branch, args, errors)
    errors.raise_if_any()
    selection = Selection(service_id=service and service.id, counter_id=counter and counter.id,
                          staff_id=staff and staff.id)
    return Asked(branch, Period.of(branch, first, last), selection, service, counter, staff)


def grouping(args) -> str:
    by = args.get("by") or "service"
    if by not in GROUPINGS:
        raise ValidationError(_("by must be one of: %(choices)s.", choices=", ".join(GROUPINGS)),
                              {"by": "unknown"})
    return by


def _days(branch, args, errors: FieldErrors, required: bool):
    today = branch.local_date(clock.now())
    found = {}
    for field, default in (("from", today - timedelta(days=DEFAULT_DAYS - 1)), ("to", today)):
        raw = args.get(field)
        if not raw and not required:
            found[field] = default
            continue
        if not raw:
            errors.add(field, _("%(field)s is required: a date, YYYY-MM-DD.", field=field))
            continue
        try:
            found[field] = day(raw, field)
        except ValidationError as error:
            errors.add(field, error.message)
    first, last = found.get("from"), found.get("to")
    if first and last:
        if last < first:
            errors.add("to", _("to must be on or after from."))
        elif (last - first).days + 1 > MAX_DAYS:
            errors.add("to", _("A report covers at most %(days)d days.", days=MAX_DAYS))
    return first, last


def _service(branch, args, errors):
    code = (args.get("service") or "").strip().upper()
    if not code:
        return None
    service = db.session.scalar(select(Service).where(Service.branch_id == branch.id, Service.code == code[:10]))
    if service is None:
        errors.add("service", _("No service with the code %(code)s at this branch.", code=code[:10]))
    return service


def _counter(branch, args, errors):
    try:
        ident = arg_number("counter", args=args)
    except ValidationError as error:
        errors.add("counter", error.message)
        return None
    if ident is None:
        return None
    counter = db.session.get(Counter, ident)
    if counter is None or counter.branch_id != branch.id:
        errors.add("counter", _("No counter %(id)d at this branch.", id=ident))
        return None
    return counter


def _staff(branch, args, errors):
    try:
        ident = arg_number("staff", args=args)
    except ValidationError as error:
        errors.add("staff", error.message)
        return None
    if ident is None:
        return None
    person = db.session.get(StaffUser, ident)
    if person is None or branch.id not in person.branch_ids:
        errors.add("staff", _("No staff member %(id)d at this branch.", id=ident))
        return None
    return person
