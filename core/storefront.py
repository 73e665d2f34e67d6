"""What a branch shows its customers (kiosk, display, status page, printed ticket): the languages
it offers, its services in kiosk order, today's closure, and its branding.

Branding is checked again here on its way out, whatever the settings page let in: a stored value
reaches a page only as a #rrggbb colour or a logo file name of the one form uploads are given."""
from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import bindparam, select

from . import clock
from .extensions import db
from .language import LANGUAGE_NAMES  # noqa: F401  (kiosk pages take it from here)
from .models import Branch, Closure, Service
from .settings import branding as uploads

LANGUAGES = ("en", "ja", "ka")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
WHITE, INK = "#ffffff", "#111111"


def offered_languages(branch: Branch) -> list[str]:
    """The branch's kiosk languages in its order, known ones only, never none."""
    stored = branch.languages if isinstance(branch.languages, list) else []
    offered = list(dict.fromkeys(l for l in stored if isinstance(l, str) and l in LANGUAGES))
    return offered or [branch.default_language if branch.default_language in LANGUAGES else "en"]


def start_language(branch: Branch) -> str:
    """The language a screen starts in: the default one, or the first offered when the default is not."""
    offered = offered_languages(branch)
    return branch.default_language if branch.default_language in offered else offered[0]


@functools.cache  # built once, bound at each use (see core/queries.py)
def _services_of():
    return select(Service).where(Service.branch_id == bindparam("branch")).order_by(Service.position, Service.code)


def kiosk_services(branch: Branch) -> list[Service]:
    """Every service of the branch, paused ones included, in the kiosk's order (position, then code)."""
    return db.session.scalars(_services_of(), {"branch": branch.id}).all()


@functools.cache  # built once, bound at each use (see core/queries.py)
def _closure_on():
    day = bindparam("day")
    return (select(Closure).where(Closure.branch_id == bindparam("branch"), Closure.first_day <= day,
                                  Closure.last_day >= day)
            .order_by(Closure.first_day).limit(1))


def closure_today(branch: Branch) -> Closure | None:
    """The closure covering today on the branch's own calendar, if any."""
    return db.session.scalar(_closure_on(), {"branch": branch.id, "day": branch.local_date(clock.now())})


def branch_logo(branch: Branch) -> Path | None:
    """This branch's own uploaded logo file, when its name has the upload's form and the file is there
    (a name pointing at another branch's upload is not shown)."""
    name = (branch.branding or {}).get("logo") if isinstance(branch.branding, dict) else None
    if not isinstance(name, str) or not uploads.NAME.fullmatch(name) or not name.startswith(f"branch-{branch.id}-"):
        return None
    path = uploads.folder() / name
    return path if path.is_file() else None


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(one: str, other: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    a, b = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _text_on(colour: str) -> str:
    return WHITE if contrast(colour, WHITE) >= contrast(colour, INK) else INK


def branding(branch: Branch) -> dict:
    """The branch's branding as pages may use it: valid colours only (each with a readable text
    colour to put on it), the logo's file name when the file is there, and `css`, the custom
    properties for a <style> block, built from the checked values alone."""
    stored = branch.branding if isinstance(branch.branding, dict) else {}
    colours = {key: stored[key].lower() for key in ("primary", "accent")
               if isinstance(stored.get(key), str) and COLOUR.fullmatch(stored[key])}
    variables = {}
    if "primary" in colours:
        primary = colours["primary"]
        variables.update({"--brand-primary": primary, "--brand-on-primary": _text_on(primary),
                          # the primary as text on white, when it can be read there
                          "--brand-ink": primary if contrast(primary, WHITE) >= 4.5 else INK})
    if "accent" in colours:
        variables.update({"--brand-accent": colours["accent"], "--brand-on-accent": _text_on(colours["accent"])})
    logo = branch_logo(branch)
    return {**colours, "logo": logo.name if logo else None,
            "css": ";".join(f"{name}:{value}" for name, value in variables.items())}
