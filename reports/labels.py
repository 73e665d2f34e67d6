"""The names of the figures, as people read them: one table for the pages and the CSV files."""
from flask_babel import lazy_gettext as _l

FIGURES = {
    "visits": _l("Visits (tickets)"),
    "walk_ins": _l("Walk-ins"),
    "appointments": _l("Appointments"),
    "served": _l("Served"),
    "no_shows": _l("No-shows"),
    "cancelled": _l("Cancelled"),
    "transferred": _l("Transferred"),
    "left_before_called": _l("Left before being called"),
    "wait_minutes": _l("Wait until called (minutes)"),
    "service_minutes": _l("Service time (minutes)"),
    "service_level": _l("Service level (share called within the target wait)"),
    "texts": _l("Texts"),
    "surveys": _l("Surveys"),
}
PARTS = {
    "count": _l("Counted"), "mean": _l("Mean"), "median": _l("Median"), "p90": _l("90th percentile"),
    "written": _l("Written"), "sent": _l("Sent"), "delivered": _l("Delivered"), "failed": _l("Failed"),
    "failed_by_reason": _l("Failed, by reason"), "suppressed": _l("Held back by the sending rules"),
    "parts": _l("Message parts used"), "replies": _l("Replies"), "reply_rate": _l("Reply rate"),
    "opt_outs": _l("Opt-outs"), "replies_by_meaning": _l("Replies by meaning"), "answered": _l("Answered"),
    "response_rate": _l("Response rate"), "mean_score": _l("Mean score"), "distribution": _l("Scores"),
    "csat": _l("CSAT (share of 4 and 5)"),
}
MEANINGS = {
    "stop": _l("Stop (opt-out)"), "start": _l("Start (opt-in)"), "help": _l("Help"), "late": _l("Running late"),
    "confirm": _l("Confirm"), "cancel": _l("Cancel"), "reschedule": _l("Reschedule"),
    "survey_score": _l("Survey score"), "survey_other": _l("Other survey answer"), "unknown": _l("Not understood"),
}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))
GROUPS = {"service": _l("Service"), "counter": _l("Counter"), "staff": _l("Staff member")}


def label(path: tuple) -> str:
    """"Texts: Failed, by reason: CMS ERROR 500" for ("texts", "failed_by_reason", "CMS ERROR 500")."""
    words = [str(FIGURES.get(path[0]) or PARTS.get(path[0], path[0]))]
    for parent, part in zip(path, path[1:]):
        if parent == "replies_by_meaning":
            words.append(str(MEANINGS.get(part, part)))
        else:
            words.append(str(PARTS.get(part, part)))
    return ": ".join(words)


def row_label(path: tuple) -> str:
    """A figure's name in its own section of a page, where the section's title says "Texts"."""
    return label(path[1:]) if path[0] in ("texts", "surveys") else label(path)
