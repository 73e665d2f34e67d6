"""CSV import of appointments: name, phone, service, start time (branch-local). Every row is
checked and reported; nothing is imported until the whole file is clean."""
import csv
import io
from datetime import datetime

import click
from flask.cli import AppGroup

from core import appointments
from core.errors import SeedError, ValidationError
from core.web import MAX_YEAR, MIN_YEAR
from kiosk.checkin import check_phone, clean_name

COLUMNS = ("name", "phone", "service", "start")
MAX_ROWS = 2000


def parse(branch, text: str) -> tuple[list[dict], list[dict]]:
    """(rows ready to book, report): one report line per row, "ok" or what is wrong with it."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or [f.strip().lower() for f in reader.fieldnames] != list(COLUMNS):
        raise ValidationError(f"The first line must be the columns: {','.join(COLUMNS)}", {"header": reader.fieldnames})
    services = {s.code: s for s in branch.services if s.active}
    rows, report, seen = [], [], set()
    for number, raw in enumerate(reader, 2):  # line 1 is the header
        if number - 1 > MAX_ROWS:
            raise ValidationError(f"At most {MAX_ROWS} rows in one file.")
        problems = []
        values = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        service = services.get(values.get("service", "").upper())
        if service is None:
            problems.append(f"unknown service {values.get('service', '')[:10]!r}")
        try:
            starts_at = datetime.strptime(values.get("start", ""), "%Y-%m-%d %H:%M").replace(tzinfo=branch.zone)
        except ValueError:
            starts_at = None
            problems.append("start must be YYYY-MM-DD HH:MM")
        if starts_at is not None and not MIN_YEAR <= starts_at.year <= MAX_YEAR:
            starts_at = None  # the slot arithmetic would overflow at the ends of the calendar
            problems.append(f"start must be within the years {MIN_YEAR} to {MAX_YEAR}")
        phone = name = None
        try:
            phone = check_phone(values["phone"], branch)["e164"] if values.get("phone") else None
        except SeedError as error:
            problems.append(f"phone: {error.message}")
        try:
            name = clean_name(values.get("name") or None)
        except SeedError as error:
            problems.append(f"name: {error.message}")
        key = (phone, starts_at)
        if phone and key in seen:
            problems.append("the same phone and time appear twice")
        seen.add(key)
        if not problems and service is not None and starts_at is not None:
            if not appointments.fits_opening_hours(branch, service, starts_at) or \
                    not appointments.on_the_grid(branch, service, starts_at):
                problems.append(f"{values['start']} is not a {service.code} slot within opening hours")
        report.append({"line": number, "status": "error" if problems else "ok", "problems": problems})
        if not problems:
            rows.append({"service_id": service.id, "starts_at": starts_at, "phone": phone, "name": name})
    return rows, report


def import_csv(branch, text: str) -> dict:
    rows, report = parse(branch, text)
    if any(line["status"] == "error" for line in report):
        raise ValidationError("Nothing was imported: fix the rows marked error.", {"rows": report})
    if not rows:
        raise ValidationError("The file has no rows.", {"rows": report})
    try:
        booked = appointments.book_many(rows)
    except ValidationError as error:  # a full slot, a time that has passed: found while booking
        raise ValidationError(f"Nothing was imported: {error.message}", {"rows": report}) from None
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
