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
    "quoted_wait": _l("Quoted against actual wait"),
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
    "tickets": _l("Tickets told a wait and called"), "mean_absolute_error": _l("Mean absolute error (minutes)"),
    "within_5_minutes": _l("Share within 5 minutes of the quote"),
    "bias": _l("Bias (minutes; above zero, people waited longer than told)"),
    "reminders": _l("Reminders"), "appointments": _l("Appointments"), "no_shows": _l("No-shows"), "reminded": _l("Reminder delivered"), "not_reminded": _l("No reminder delivered"),
    "no_show_rate": _l("No-show rate"),
}
MEANINGS = {
    "stop": _l("Stop (opt-out)"), "start": _l("Start (opt-in)"), "help": _l("Help"), "late": _l("Running late"),
    "confirm": _l("Confirm"), "cancel": _l("Cancel"), "reschedule": _l("Reschedule"),
    "survey_score": _l("Survey score"), "survey_other": _l("Other survey answer"), "unknown": _l("Not understood"),
}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))
# The staffing hint's columns after weekday and hour, in order.
STAFFING = {
    "days": _l("Days open"), "arrivals_per_hour": _l("Arrivals per hour"),
    "service_minutes": _l("Mean service time (minutes)"), "target_wait_minutes": _l("Target wait (minutes)"),
    "needed": _l("Counters needed"), "open": _l("Counters calling"),
}
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
    return label(path[1:]) if path[0] in ("texts", "surveys", "quoted_wait") else label(path)
