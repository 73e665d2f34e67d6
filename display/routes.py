"""The display page. Options come in the URL so each screen is set up by its bookmark:

/display/1?services=A,B&languages=en,ja&rotate=15&layout=split&names=1
"""
from flask import abort, render_template, request
from flask_babel import gettext, pgettext
from sqlalchemy import select

from core import clock, storefront
from core.security import embeddable
from core.errors import ValidationError
from core.extensions import db
from core.locales import force_locale
from core.models import Branch

from . import bp, wallclock

LANGUAGES = storefront.LANGUAGES
LAYOUTS = ("split", "full")


def _strings(language: str) -> dict:
    """The page's words in `language`. A phrase with a number in it is one catalogue string with a
    placeholder, so each language puts the number where it belongs ("Counter 3", "3番窓口")."""
    with force_locale(language):
        return {
            # The heading over the number just called (ka: "ახლა გამოძახებულია", not "ემსახურება", which
            # says "is serving him"; the language review of 2026-11-29).
            "now_serving": pgettext("display", "Now serving"),
            "recent": gettext("Recent calls"),
            "waiting": gettext("Waiting"),
            "counter": pgettext("display", "Counter %(counter)s"),
            "serving": pgettext("display", "%(ticket)s → counter %(counter)s"),
            # Japanese adds 様 after a name; the branch decides whether names are shown at all.
            "name": pgettext("display: a customer's name", "%(name)s"),
            "queue": pgettext("display", "%(count)s waiting, about %(minutes)s min"),
            "queue_empty": gettext("Nobody waiting."),
            "nobody": gettext("Please take a ticket. You will be called here."),
            "offline": gettext("Reconnecting…"),
            # Spoken: display.js spells the ticket out ("A 0 1 2") so every voice reads it the same way,
            # but as a number in Japanese ("A12", which the phrase follows with 番), as announcements there do.
            "speech": gettext("Ticket %(ticket)s, please go to counter %(counter)s."),
            "clock": wallclock.formats(language),
        }


def _options(branch: Branch) -> dict:
    args = request.args
    codes = {s.code for s in branch.services if s.active}
    services = [c.strip().upper() for c in args.get("services", "").split(",") if c.strip()]
    unknown = [c for c in services if c not in codes]
    if unknown:
        raise ValidationError(f"Unknown service(s) at {branch.name}: {', '.join(unknown)[:40]}")
    languages = [l.strip() for l in args.get("languages", storefront.start_language(branch)).split(",") if l.strip()]
    if not languages or any(l not in LANGUAGES for l in languages):
        raise ValidationError("languages must be a list of en, ja, ka.")
    # Only what the branch offers now: a bookmark made before it stopped offering one keeps working.
    offered = storefront.offered_languages(branch)
    languages = [l for l in dict.fromkeys(languages) if l in offered] or [storefront.start_language(branch)]
    rotate = args.get("rotate", "12")
    if not rotate.isdigit() or not 3 <= int(rotate) <= 600:
        raise ValidationError("rotate is the seconds each language stays on screen, 3 to 600.")
    layout = args.get("layout", "split")
    if layout not in LAYOUTS:
        raise ValidationError(f"layout must be one of {', '.join(LAYOUTS)}.")
    return {"branch": branch.id, "services": services, "languages": languages, "rotate": int(rotate),
            "layout": layout, "names": branch.show_names and args.get("names") == "1",
            "timezone": branch.timezone}


@bp.get("/")
def index():
    branches = db.session.scalars(select(Branch).order_by(Branch.id)).all()
    return render_template("display/index.html", branches=branches)


@bp.get("/<int:branch_id>")
@embeddable  # the Screens settings page previews it in a frame; CSP_EMBED_ANCESTORS says who else may
def screen(branch_id):
    branch = db.session.get(Branch, branch_id)
    if branch is None:
        abort(404, f"Branch {branch_id} does not exist.")
    options = _options(branch)
    strings = {language: _strings(language) for language in options["languages"]}
    now = clock.now()
    return render_template("display/screen.html", branch=branch, options=options, strings=strings,
                           brand=storefront.branding(branch), now=now,
                           written=wallclock.written(now, branch, options["languages"][0]))
