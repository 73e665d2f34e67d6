"""/api/v1/reports: the figures as JSON, for integrations and dashboards. GET only."""
from flask import jsonify, request
from flask_login import login_required

from core import reports, scope

from . import api, figures, params, staffing


@api.get("/summary")
@login_required
@scope.require_role("manager")
def summary():
    """Every figure of the branch's days from..to (and ?service=CODE, ?counter=, ?staff=), beside
    the period of the same length before ("previous")."""
    asked = params.read(request.args)
    return jsonify({**_about(asked), **figures.summary(asked.period, asked.selection)})


@api.get("/heatmap")
@login_required
@scope.require_role("manager")
def heatmap():
    """Arrivals and mean wait per branch-local weekday (Monday 0) and hour."""
    asked = params.read(request.args)
    return jsonify({**_about(asked), **reports.heatmap(asked.period, asked.selection)})


@api.get("/staffing")
@login_required
@scope.require_role("manager")
def staffing_hint():
    """Per branch-local weekday (Monday 0) and hour: arrivals per hour, mean service time, the target
    wait, the counters needed to call 80 % within it (Erlang C) and the counters that were calling."""
    asked = params.read(request.args)
    return jsonify({**_about(asked), "from": asked.period.first_day.isoformat(),
                    "to": asked.period.last_day.isoformat(), **staffing.staffing(asked.period, asked.selection)})


@api.get("/breakdown")
@login_required
@scope.require_role("manager")
def breakdown():
    """?by=service|counter|staff: one row per group with the main figures, this period and the previous."""
    asked = params.read(request.args)
    by = params.grouping(request.args)
    return jsonify({**_about(asked), **figures.breakdown_with_previous(asked.period, by, asked.selection)})


def _about(asked: params.Asked) -> dict:
    return {"branch": asked.branch.id, "timezone": asked.branch.timezone,
            "service": asked.service.code if asked.service else None,
            "counter": asked.counter.id if asked.counter else None,
            "staff": asked.staff.id if asked.staff else None}
