"""/api/v1/reports: the figures as JSON, for integrations and dashboards. GET only; the CSV files
are the pages' (/reports/export/...)."""
from dataclasses import dataclass

from flask import jsonify
from flask_login import login_required

from core import reports, scope
from core.openapi import (DATE, INTEGER, NUMBER, ONE_LINE, STRING, Any, array, endpoint, model, nullable,
                          query_values)
from core.reports import GROUPINGS, HOURS, MAX_DAYS, WEEKDAYS
from core.web import MAX_ID

from . import api, figures, params, staffing
from .texts import MEANING_NAMES, SCORES


@dataclass
class ReportArg(Any):
    """A report's query argument, passed on as text: reports/params.py reads them all and names
    every bad one in one refusal (a person fixing a report's link sees all that is wrong at once),
    so a missing one that is required is its to refuse too. The schema says what it takes."""

    def read(self, source, key):
        return None if source.get(key) is None else super().read(source, key)


DAY_SCHEMA = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
PERIOD_ARGS = {
    "branch": ReportArg("The branch (default: the caller's first)", schema_of=ID_SCHEMA),
    "from": ReportArg("The first day, on the branch's calendar", required=True, schema_of=DAY_SCHEMA),
    "to": ReportArg(f"The last day (at most {MAX_DAYS} days after from, counting both)", required=True,
                schema_of=DAY_SCHEMA),
    "service": ReportArg("Only this service's tickets (its code)",
                         schema_of={"type": "string", "maxLength": 10, "pattern": ONE_LINE}),
    "counter": ReportArg("Only the tickets this counter called", schema_of=ID_SCHEMA),
    "staff": ReportArg("Only the tickets this staff member closed", schema_of=ID_SCHEMA),
}

# What the answers hold (the description at /api/v1/openapi.json; core/openapi.py).
RATE = nullable({**NUMBER, "minimum": 0, "maximum": 1, "description": "A share from 0 to 1 (null: nothing to share)"})
ABOUT = {"branch": INTEGER, "timezone": {**STRING, "description": "The branch's: the days and hours are its"},
         "service": nullable(STRING), "counter": nullable(INTEGER), "staff": nullable(INTEGER)}
MINUTES = model("ReportMinutes", {"count": INTEGER, "mean": nullable(NUMBER), "median": nullable(NUMBER),
                                  "p90": nullable(NUMBER)})
SURVEYS = model("ReportSurveys", {
    "sent": INTEGER, "answered": INTEGER, "response_rate": RATE, "mean_score": nullable(NUMBER),
    "distribution": model("ReportScores", {str(score): INTEGER for score in SCORES}),
    "csat": {**RATE, "description": "The share of answers that are 4 or 5"}})
QUEUE_FIGURES = {
    **{name: INTEGER for name in ("visits", "walk_ins", "appointments", "served", "no_shows", "cancelled",
                                  "left_before_called", "transferred")},
    "wait_minutes": MINUTES, "service_minutes": MINUTES,
    "service_level": {**RATE, "description": "The share called within their service's target wait"},
    "quoted_wait": model("ReportQuotedWait", {
        "tickets": INTEGER, "mean_absolute_error": nullable(NUMBER), "within_5_minutes": RATE,
        "bias": nullable({**NUMBER, "description": "Real minus told, in minutes: above 0, people waited longer"})}),
}
REMINDED = model("ReportReminded", {"appointments": INTEGER, "no_shows": INTEGER, "no_show_rate": RATE})
TEXTS = model("ReportTexts", {
    **{name: INTEGER for name in ("written", "sent", "delivered", "failed", "suppressed", "parts")},
    "failed_by_reason": {"type": "object", "additionalProperties": INTEGER},
    "replies": nullable(INTEGER), "reply_rate": RATE, "opt_outs": nullable(INTEGER),
    "replies_by_meaning": nullable({"type": "object", "properties": {name: INTEGER for name in MEANING_NAMES},
                                    "required": list(MEANING_NAMES)}),
    "reminders": nullable(model("ReportReminders", {"reminded": REMINDED, "not_reminded": REMINDED})),
}, required=["written", "sent", "delivered", "failed", "failed_by_reason", "suppressed", "parts", "replies",
             "reply_rate", "opt_outs", "replies_by_meaning", "reminders"])
PERIOD = {"from": DATE, "to": DATE, "days": INTEGER, **QUEUE_FIGURES, "texts": TEXTS, "surveys": SURVEYS}
GROUP = model("ReportGroup", {"id": INTEGER, "name": STRING, **QUEUE_FIGURES, "surveys": SURVEYS})
CELLS = array(array(INTEGER, minItems=HOURS, maxItems=HOURS), minItems=WEEKDAYS, maxItems=WEEKDAYS)
MEAN_CELLS = array(array(nullable(NUMBER), minItems=HOURS, maxItems=HOURS), minItems=WEEKDAYS, maxItems=WEEKDAYS)


@api.get("/summary")
@login_required
@scope.require_role("manager")
@endpoint("Every figure of the branch's days, beside the period of the same length before", role="manager",
          query=PERIOD_ARGS, responses={200: model("ReportSummary", {
              **ABOUT, **PERIOD, "previous": model("ReportPeriod", PERIOD)})})
def summary():
    """Every figure of the branch's days from..to (and ?service=CODE, ?counter=, ?staff=), beside
    the period of the same length before ("previous")."""
    asked = params.read(query_values())
    return jsonify({**_about(asked), **figures.summary(asked.period, asked.selection)})


@api.get("/heatmap")
@login_required
@scope.require_role("manager")
@endpoint("Arrivals and mean wait per weekday and hour", role="manager", query=PERIOD_ARGS,
          description="Cells by the branch's weekday (Monday 0) and hour (0-23).",
          responses={200: model("ReportHeatmap", {
              **ABOUT, "arrivals": CELLS, "mean_wait_minutes": MEAN_CELLS,
              "weeks": {**array(INTEGER, minItems=WEEKDAYS, maxItems=WEEKDAYS),
                        "description": "How many of each weekday the period holds"},
              "busiest": array(model("ReportBusyHour", {"weekday": INTEGER, "hour": INTEGER,
                                                        "arrivals": INTEGER}), maxItems=5)})})
def heatmap():
    """Arrivals and mean wait per branch-local weekday (Monday 0) and hour."""
    asked = params.read(query_values())
    return jsonify({**_about(asked), **reports.heatmap(asked.period, asked.selection)})


@api.get("/staffing")
@login_required
@scope.require_role("manager")
@endpoint("Counters needed per weekday and hour (Erlang C), beside those that were calling", role="manager",
          query=PERIOD_ARGS,
          description="Per branch-local weekday (Monday 0) and hour: arrivals per hour, mean service time, the "
                      "target wait, the counters needed to call `target_share` of people within it and the "
                      "counters that were calling. A hint for a rota, not a promise.",
          responses={200: model("ReportStaffing", {
              **ABOUT, "from": DATE, "to": DATE, "target_share": NUMBER,
              "rows": array(model("ReportStaffingHour", {
                  "weekday": INTEGER, "hour": INTEGER, "days": INTEGER, "arrivals_per_hour": NUMBER,
                  "service_minutes": nullable(NUMBER), "target_wait_minutes": nullable(NUMBER),
                  "needed": nullable(INTEGER), "open": NUMBER}))})})
def staffing_hint():
    """Per branch-local weekday (Monday 0) and hour: arrivals per hour, mean service time, the target
    wait, the counters needed to call 80 % within it (Erlang C) and the counters that were calling."""
    asked = params.read(query_values())
    return jsonify({**_about(asked), "from": asked.period.first_day.isoformat(),
                    "to": asked.period.last_day.isoformat(), **staffing.staffing(asked.period, asked.selection)})


@api.get("/breakdown")
@login_required
@scope.require_role("manager")
@endpoint("The main figures per service, counter or staff member, this period and the previous", role="manager",
          query={**PERIOD_ARGS, "by": ReportArg("What a row is", schema_of={
              "type": "string", "enum": list(GROUPINGS), "default": "service"})},
          responses={200: model("ReportBreakdown", {
              **ABOUT, "by": {"type": "string", "enum": list(GROUPINGS)}, "from": DATE, "to": DATE,
              "rows": {**array(GROUP), "description": "Most visits first"}, "previous": array(GROUP)})})
def breakdown():
    """?by=service|counter|staff: one row per group with the main figures, this period and the previous."""
    asked = params.read(query_values())
    by = params.grouping(query_values())
    return jsonify({**_about(asked), **figures.breakdown_with_previous(asked.period, by, asked.selection)})


def _about(asked: params.Asked) -> dict:
    return {"branch": asked.branch.id, "timezone": asked.branch.timezone,
            "service": asked.service.code if asked.service else None,
            "counter": asked.counter.id if asked.counter else None,
            "staff": asked.staff.id if asked.staff else None}
