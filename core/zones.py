"""Time zones: which names are real, the close matches for one that is not, and the list a page
offers. One place, because a wrong zone (README once said Europe/Tbilisi: Tbilisi is Asia/Tbilisi)
made every check-in a 500; the settings, the start-up check and the branch page all ask here."""
from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import available_timezones

# The regions of the tz database's canonical names; a page groups its choices by them.
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
# In the database but no place's zone: the server's own setting, and "no zone at all".
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})


@cache
def known() -> frozenset[str]:
    return frozenset(name for name in available_timezones()
                     if name not in NOT_PLACES and not name.startswith(("posix/", "right/")))


def is_zone(name) -> bool:
    return isinstance(name, str) and name in known()


def suggestions(name: str, count: int = 3) -> list[str]:
    """Real zones a mistyped `name` probably meant: the same city in another region first
    (Europe/Tbilisi -> Asia/Tbilisi), then names that look alike."""
    if not isinstance(name, str) or not name.strip():
        return []
    wanted = name.strip().replace(" ", "_")
    city = wanted.rsplit("/", 1)[-1].lower()
    same_city = sorted(zone for zone in known() if zone.rsplit("/", 1)[-1].lower() == city and zone != wanted)
    if same_city:
        return same_city[:count]
    by_city = {zone.rsplit("/", 1)[-1].lower(): zone for zone in sorted(known())}
    alike = [by_city[match] for match in difflib.get_close_matches(city, by_city, n=count, cutoff=0.75)]
    alike += difflib.get_close_matches(wanted, sorted(known()), n=count, cutoff=0.75)
    found = []
    for zone in alike:
        if zone not in found:
            found.append(zone)
    return found[:count]


@cache
def grouped() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(region, its zones) for a <select>: the canonical Region/City names, UTC on its own."""
    groups = [("UTC", ("UTC",))]
    for region in REGIONS:
        zones = tuple(sorted(zone for zone in known() if zone.startswith(region + "/")))
        if zones:
            groups.append((region, zones))
    return tuple(groups)
