"""Each report whole: the queue's figures (core/reports.py) with the texts' and surveys'
(reports/texts.py), for the period and for the one of the same length before it."""
from __future__ import annotations

from core import reports
from core.reports import EVERYTHING, Grouping, Period, Selection

from . import texts


def period_figures(period: Period, selection: Selection = EVERYTHING) -> dict:
    return {"from": period.first_day.isoformat(), "to": period.last_day.isoformat(), "days": period.days,
            **reports.visits(period, selection),
            "texts": texts.texts(period, selection), "surveys": texts.surveys(period, selection)}


def summary(period: Period, selection: Selection = EVERYTHING) -> dict:
    """Every figure of the period, and under "previous" the same for the period before."""
    return {**period_figures(period, selection), "previous": period_figures(period.previous(), selection)}


def breakdown(period: Period, by: str, selection: Selection = EVERYTHING) -> list[dict]:
    """One row per service, counter or staff member: the queue's figures and the surveys'."""
    grouping = Grouping(by)
    scores = texts.surveys_by(period, grouping, selection)
    return [{**row, "surveys": scores.get(row["id"]) or texts.no_surveys()}
            for row in reports.breakdown(period, by, selection)]


def breakdown_with_previous(period: Period, by: str, selection: Selection = EVERYTHING) -> dict:
    return {"by": by, "from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
            "rows": breakdown(period, by, selection), "previous": breakdown(period.previous(), by, selection)}
