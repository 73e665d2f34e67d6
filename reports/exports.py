"""CSV files of the reports and raw exports of tickets and texts, for Excel: UTF-8 with a BOM (or
Excel reads it as the local code page), times on the branch's clock. Streamed a few hundred rows
at a time: a year of a busy branch is hundreds of thousands of rows. No phone numbers, no names
of customers, no message bodies: the figures need none of them."""
from __future__ import annotations

import csv
import io

from flask import Response, request, stream_with_context
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from core import reports, scope
from core.extensions import db
from core.models import Counter, Service, Ticket
from messaging.models import OutboxMessage

from . import bp, figures, labels, params, staffing, texts

BOM = "\ufeff"
CHUNK = 500
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so is a formula to Excel: written as text


def cell(value):
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value
    return "" if value is None else value


def stream(filename: str, header: list, rows) -> Response:
    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write(BOM)
        writer.writerow([cell(str(name)) for name in header])
        for number, row in enumerate(rows, 1):
            writer.writerow([cell(value) for value in row])
            if number % CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _name(asked: params.Asked, what: str) -> str:
    return f"seed-{what}-branch{asked.branch.id}-{asked.period.first_day}-{asked.period.last_day}.csv"


def flatten(figures_: dict, path=()):
    """(path, value) of every number in a report, nested figures included."""
    for key, value in figures_.items():
        if isinstance(value, dict):
            yield from flatten(value, (*path, key))
        elif key not in ("from", "to", "days", "previous"):
            yield (*path, key), value


@bp.get("/export/summary.csv")
@login_required
@scope.require_role("manager")
def summary_csv():
    asked = params.read(request.args, required=False)
    found = figures.summary(asked.period, asked.selection)
    before = dict(flatten(found["previous"]))
    previous = found["previous"]
    header = [_("Figure"), _("%(first)s to %(last)s", first=found["from"], last=found["to"]),
              _("%(first)s to %(last)s (previous)", first=previous["from"], last=previous["to"])]
    rows = [(labels.label(path), value, before.get(path)) for path, value in flatten(found)]
    return stream(_name(asked, "summary"), header, rows)


@bp.get("/export/breakdown.csv")
@login_required
@scope.require_role("manager")
def breakdown_csv():
    asked = params.read(request.args, required=False)
    by = params.grouping(request.args)
    rows = figures.breakdown(asked.period, by, asked.selection)
    header = [labels.GROUPS[by], *(labels.label(path) for path, _value in flatten(_main(rows[0])))] if rows else [
        labels.GROUPS[by]]
    return stream(_name(asked, f"by-{by}"), header,
                  ([row["name"], *(value for _path, value in flatten(_main(row)))] for row in rows))


def _main(row: dict) -> dict:
    """A breakdown row without its id and name; of the surveys, the answers and scores."""
    surveys = row["surveys"]
    return {**{k: v for k, v in row.items() if k not in ("id", "name", "surveys")},
            "surveys": {k: surveys[k] for k in ("sent", "answered", "response_rate", "mean_score", "csat")}}


@bp.get("/export/heatmap.csv")
@login_required
@scope.require_role("manager")
def heatmap_csv():
    asked = params.read(request.args, required=False)
    found = reports.heatmap(asked.period, asked.selection)
    header = [_("Weekday"), _("Hour"), _("Arrivals"), _("Mean wait (minutes)")]
    rows = ((str(labels.WEEKDAYS[day]), f"{hour:02d}:00", found["arrivals"][day][hour],
             found["mean_wait_minutes"][day][hour]) for day in range(reports.WEEKDAYS) for hour in range(reports.HOURS))
    return stream(_name(asked, "heatmap"), header, rows)


@bp.get("/export/staffing.csv")
@login_required
@scope.require_role("manager")
def staffing_csv():
    asked = params.read(request.args, required=False)
    found = staffing.staffing(asked.period, asked.selection)
    header = [_("Weekday"), _("Hour"), *(labels.STAFFING[name] for name in labels.STAFFING)]
    rows = ((str(labels.WEEKDAYS[row["weekday"]]), f"{row['hour']:02d}:00", *(row[name] for name in labels.STAFFING))
            for row in found["rows"])
    return stream(_name(asked, "staffing"), header, rows)


@bp.get("/export/tickets.csv")
@login_required
@scope.require_role("manager")
def tickets_csv():
    """Every ticket of the period, oldest first, its moments on the branch's clock."""
    asked = params.read(request.args, required=False)
    zone, period = asked.branch.zone, asked.period
    query = (select(Ticket.label, Ticket.service_day, Service.code, Counter.name, Ticket.status, Ticket.source,
                    Ticket.language, Ticket.arrived_at, Ticket.called_at, Ticket.started_at, Ticket.finished_at,
                    Ticket.recall_count)
             .join(Service, Service.id == Ticket.service_id).outerjoin(Counter, Counter.id == Ticket.counter_id)
             .where(*period.tickets(), *asked.selection.conditions(period))
             .order_by(Ticket.service_day, Ticket.arrived_at, Ticket.id).execution_options(yield_per=CHUNK))
    header = [_("Ticket"), _("Day"), _("Service"), _("Counter"), _("Status"), _("Source"), _("Language"),
              *(_("%(moment)s (%(zone)s)", moment=moment, zone=asked.branch.timezone)
                for moment in (_("Arrived"), _("Called"), _("Started"), _("Finished"))),
              _("Wait (minutes)"), _("Service time (minutes)"), _("Recalls")]

    def rows():
        for label, day, service, counter, status, source, language, arrived, called, started, finished, recalls \
                in db.session.execute(query):
            yield (label, day.isoformat(), service, counter, status, source, language,
                   *(_local(moment, zone) for moment in (arrived, called, started, finished)),
                   _minutes(arrived, called) if status in ("completed", "no_show") else None,
                   _minutes(started, finished) if status == "completed" else None, recalls)

    return stream(_name(asked, "tickets"), header, rows())


@bp.get("/export/texts.csv")
@login_required
@scope.require_role("manager")
def texts_csv():
    """Every text written in the period: kind, fate, parts, on the branch's clock; no number, no body."""
    asked = params.read(request.args, required=False)
    zone, period = asked.branch.zone, asked.period
    query = (select(OutboxMessage.created_at, OutboxMessage.kind, OutboxMessage.status, OutboxMessage.encoding,
                    OutboxMessage.parts, OutboxMessage.sent_at, OutboxMessage.delivered_at, OutboxMessage.failed_at,
                    OutboxMessage.last_error, Ticket.label)
             .outerjoin(Ticket, Ticket.id == OutboxMessage.ticket_id)
             .where(*texts.written_in(period))
             .order_by(OutboxMessage.created_at, OutboxMessage.id).execution_options(yield_per=CHUNK))
    if asked.selection.narrowed:
        query = query.where(Ticket.id.is_not(None), *asked.selection.conditions(period))
    header = [_("%(moment)s (%(zone)s)", moment=_("Written"), zone=asked.branch.timezone), _("Kind"), _("Status"),
              _("Encoding"), _("Parts"), _("Sent"), _("Delivered"), _("Failed"), _("Why it failed"), _("Ticket")]

    def rows():
        for created, kind, status, encoding, parts, sent, delivered, failed, error, ticket in db.session.execute(query):
            yield (_local(created, zone), kind, status, encoding, parts, _local(sent, zone), _local(delivered, zone),
                   _local(failed, zone), error, ticket)

    return stream(_name(asked, "texts"), header, rows())


def _local(moment, zone) -> str | None:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _minutes(earlier, later) -> float | None:
    if not earlier or not later:
        return None
    return round((later - earlier).total_seconds() / 60, 2)
