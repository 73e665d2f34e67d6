"""CSV import of appointments: name, phone, service, start time (branch-local) and, optionally, the
language of the customer's texts (one the branch offers; without the column, the branch's default).
Every row is checked and reported, in the reader's language; nothing is imported until the whole
file is clean."""
import csv
import io
from datetime import datetime

import click
from flask.cli import AppGroup
from flask_babel import gettext

from core import appointments
from core.storefront import offered_languages, start_language
from core.errors import SeedError, ValidationError
from core.web import MAX_YEAR, MIN_YEAR
from kiosk.checkin import check_phone, clean_name

COLUMNS = ("name", "phone", "service", "start")
OPTIONAL = ("language",)
MAX_ROWS = 2000


def parse(branch, text: str) -> tuple[list[dict], list[dict]]:
    """(rows ready to book, report): one report line per row, "ok" or what is wrong with it."""
    # newline="": the csv module reads the line ends itself (a lone \r in a field is a line end,
    # not a malformed file); what it still cannot read is refused, never a 500.
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        fieldnames, records = reader.fieldnames, list(reader)
    except csv.Error as error:
        raise ValidationError(gettext("This is not a CSV file that can be read: %(problem)s", problem=str(error)[:80]),
                              {"csv": "not CSV"}) from None
    header = [f.strip().lower() for f in fieldnames or []]
    if header not in (list(COLUMNS), [*COLUMNS, *OPTIONAL]):
        raise ValidationError(gettext("The first line must be the columns: %(columns)s (a last column %(optional)s "
                                      "may follow).", columns=",".join(COLUMNS), optional=",".join(OPTIONAL)),
                              {"header": fieldnames})
    services = {s.code: s for s in branch.services if s.active}
    languages, default_language = offered_languages(branch), start_language(branch)
    rows, report, seen = [], [], set()
    for number, raw in enumerate(records, 2):  # line 1 is the header
        if number - 1 > MAX_ROWS:
            raise ValidationError(gettext("At most %(count)s rows in one file.", count=MAX_ROWS))
        problems = []
        values = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        service = services.get(values.get("service", "").upper())
        if service is None:
            problems.append(gettext("unknown service %(service)s", service=repr(values.get("service", "")[:10])))
        try:
            starts_at = datetime.strptime(values.get("start", ""), "%Y-%m-%d %H:%M").replace(tzinfo=branch.zone)
        except ValueError:
            starts_at = None
            problems.append(gettext("start must be YYYY-MM-DD HH:MM"))
        if starts_at is not None and not MIN_YEAR <= starts_at.year <= MAX_YEAR:
            starts_at = None  # the slot arithmetic would overflow at the ends of the calendar
            problems.append(gettext("start must be within the years %(first)s to %(last)s", first=MIN_YEAR,
                                    last=MAX_YEAR))
        phone = name = None
        try:
            phone = check_phone(values["phone"], branch)["e164"] if values.get("phone") else None
        except SeedError as error:
            problems.append(gettext("phone: %(problem)s", problem=error.message))
        try:
            name = clean_name(values.get("name") or None)
        except SeedError as error:
            problems.append(gettext("name: %(problem)s", problem=error.message))
        language = values.get("language", "").lower() or default_language
        if language not in languages:
            problems.append(gettext("language %(language)s is not one this branch offers (%(offered)s)",
                                    language=repr(values.get("language", "")[:10]), offered=", ".join(languages)))
        key = (phone, starts_at)
        if phone and key in seen:
            problems.append(gettext("the same phone and time appear twice"))
        seen.add(key)
        if not problems and service is not None and starts_at is not None:
            if not appointments.fits_opening_hours(branch, service, starts_at) or \
                    not appointments.on_the_grid(branch, service, starts_at):
                problems.append(gettext("%(start)s is not a %(service)s slot within opening hours",
                                        start=values["start"], service=service.code))
        report.append({"line": number, "status": "error" if problems else "ok", "problems": problems})
        if not problems:
            rows.append({"service_id": service.id, "starts_at": starts_at, "phone": phone, "name": name,
                         "language": language})
    return rows, report


def import_csv(branch, text: str) -> dict:
    rows, report = parse(branch, text)
    if any(line["status"] == "error" for line in report):
        raise ValidationError(gettext("Nothing was imported: fix the rows marked error."), {"rows": report})
    if not rows:
        raise ValidationError(gettext("The file has no rows."), {"rows": report})
    try:
        booked = appointments.book_many(rows)
    except ValidationError as error:  # a full slot, a time that has passed: found while booking
        raise ValidationError(gettext("Nothing was imported: %(problem)s", problem=error.message),
                              {"rows": report}) from None
    return {"imported": len(booked), "rows": report, "codes": [a.booking_code for a in booked]}


appointment_cli = AppGroup("appointment", help="Appointments.")


@appointment_cli.command("import")
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.option("--branch", "branch_id", type=int)
def import_command(path, branch_id):
    """Import appointments from a CSV file (name,phone,service,start): all rows or none."""
    from core.cli import _branch, _ready

    _ready()
    branch = _branch(branch_id)
    try:
        result = import_csv(branch, path.read())
    except ValidationError as error:
        for line in (error.detail or {}).get("rows", []) if isinstance(error.detail, dict) else []:
            if line["status"] == "error":
                click.echo(f"line {line['line']}: {'; '.join(line['problems'])}")
        raise click.ClickException(error.message)
    click.echo(f"Imported {result['imported']} appointment(s).")


def init_app(app) -> None:
    app.cli.add_command(appointment_cli)
