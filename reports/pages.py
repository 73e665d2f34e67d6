"""The report pages: the summary (figures beside the previous period, the scores, arrivals by
weekday and hour, surveys to follow up) and the breakdown by service, counter or staff member.
Charts are SVG drawn here on the server: nothing to download, and they print."""
from __future__ import annotations

from flask import render_template, request
from flask_login import login_required

from core import reports, scope
from core.errors import ValidationError
from core.web import arg_number

from . import bp, figures, labels, params, staffing, texts


def _page(template: str, grouped: bool = False, content=None):
    """The page, or the same page with the refused fields marked (400)."""
    try:
        asked = params.read(request.args, required=False)
        by = params.grouping(request.args) if grouped else None
    except ValidationError as error:
        branch = scope.branch(arg_number("branch"))
        extra = {"by": "service"} if grouped else {}
        return render_template(template, asked=None, branch=branch, branches=scope.branches(), form=request.args,
                               errors=error.detail if isinstance(error.detail, dict) else {},
                               message=error.message, labels=labels, **extra), 400
    return render_template(template, asked=asked, branch=asked.branch, branches=scope.branches(),
                           form=asked.query(), errors={}, labels=labels, **(content or _content)(asked, by))


def _content(asked: params.Asked, by: str | None) -> dict:
    if by is not None:
        return {"by": by, "rows": figures.breakdown(asked.period, by, asked.selection)}
    found = figures.summary(asked.period, asked.selection)
    heat = reports.heatmap(asked.period, asked.selection)
    return {"report": found, "heat": heat, "hours": _open_hours(heat), "sections": _sections(found),
            "follow_up": texts.follow_up(asked.period, asked.selection, limit=20),
            "services": {s.id: s.code for s in asked.branch.services}}


COUNT, MINUTES, SHARE, SCORE = "count", "minutes", "share", "score"
# The summary's tables: (title, [(path into the report, kind of number)]).
SECTIONS = (
    ("visits", [(("visits",), COUNT), (("walk_ins",), COUNT), (("appointments",), COUNT), (("served",), COUNT),
                (("no_shows",), COUNT), (("cancelled",), COUNT), (("transferred",), COUNT),
                (("left_before_called",), COUNT)]),
    ("waiting", [((figure, part), MINUTES) for figure in ("wait_minutes", "service_minutes")
                 for part in ("mean", "median", "p90")] + [(("service_level",), SHARE)]),
    ("quoted_wait", [(("quoted_wait", "tickets"), COUNT), (("quoted_wait", "mean_absolute_error"), MINUTES),
                     (("quoted_wait", "within_5_minutes"), SHARE), (("quoted_wait", "bias"), MINUTES)]),
    ("texts", [(("texts", part), COUNT) for part in ("sent", "delivered", "failed", "suppressed", "parts",
                                                       "replies", "opt_outs")] + [(("texts", "reply_rate"), SHARE)]
     + [(("texts", "reminders", group, part), kind) for group in ("reminded", "not_reminded")
        for part, kind in (("appointments", COUNT), ("no_shows", COUNT), ("no_show_rate", SHARE))]),
    ("surveys", [(("surveys", "sent"), COUNT), (("surveys", "answered"), COUNT),
                 (("surveys", "response_rate"), SHARE), (("surveys", "mean_score"), SCORE),
                 (("surveys", "csat"), SHARE)]),
)


def _pick(found: dict, path: tuple):
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def _sections(found: dict) -> list[dict]:
    """The summary's tables, each row with this period's value, the previous one's and its kind."""
    return [{"name": name, "rows": [{"label": labels.row_label(path), "now": _pick(found, path), "kind": kind,
                                     "before": _pick(found["previous"], path)} for path, kind in rows]}
            for name, rows in SECTIONS]


def _open_hours(heat: dict) -> list[int]:
    """The hours anyone arrived in (first to last): the grid shows the branch's day, not 24 empty columns."""
    used = [hour for hour in range(reports.HOURS) if any(row[hour] for row in heat["arrivals"])]
    return list(range(used[0], used[-1] + 1)) if used else list(range(8, 18))


@bp.get("/")
@login_required
@scope.require_role("manager")
def summary_page():
    return _page("reports/summary.html")


@bp.get("/staffing")
@login_required
@scope.require_role("manager")
def staffing_page():
    """Its own page: a year of it is a second pass over the tickets, which the summary cannot afford."""
    return _page("reports/staffing.html",
                 content=lambda asked, _by: {"staffing": staffing.staffing(asked.period, asked.selection)})


@bp.get("/breakdown")
@login_required
@scope.require_role("manager")
def breakdown_page():
    return _page("reports/breakdown.html", grouped=True)
