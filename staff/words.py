"""The words staff pages show for stored codes (statuses, sources), in the reader's language: one
table per thing; a code missing from its table shows as it is stored."""
from flask_babel import pgettext


def ticket_status() -> dict:
    return {"waiting": pgettext("ticket", "waiting"), "called": pgettext("ticket", "called"),
            "serving": pgettext("ticket", "serving"), "held": pgettext("ticket", "on hold"),
            "completed": pgettext("ticket", "completed"), "no_show": pgettext("ticket", "no-show"),
            "cancelled": pgettext("ticket", "cancelled")}


def appointment_status() -> dict:
    return {"booked": pgettext("appointment", "booked"), "confirmed": pgettext("appointment", "confirmed"),
            "cancelled": pgettext("appointment", "cancelled"), "checked_in": pgettext("appointment", "checked in"),
            "no_show": pgettext("appointment", "no-show")}


def received_status() -> dict:
    """A received text's state: the reply router's, then staff's."""
    return {"new": pgettext("received text", "new"), "handling": pgettext("received text", "being read"),
            "handled": pgettext("received text", "handled"),
            "unhandled": pgettext("received text", "unhandled"), "failed": pgettext("received text", "failed")}


def consent_source() -> dict:
    return {"kiosk": pgettext("consent given at", "kiosk"), "staff": pgettext("consent given at", "staff"),
            "sms": pgettext("consent given at", "text message"), "import": pgettext("consent given at", "import")}


def _word(table):
    def word(code) -> str:
        return table().get(code, code) if code is not None else ""
    return word


# Jinja filters: {{ ticket.status|ticket_status }}
FILTERS = {"ticket_status": _word(ticket_status), "appointment_status": _word(appointment_status),
           "received_status": _word(received_status), "consent_source": _word(consent_source)}
