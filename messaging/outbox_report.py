"""What the outbox and the gateways look like right now, for people: the outbox page, the console
panel and /api/v1/health. Read-only. Every query is bounded by a page (keyset on id), the queued
backlog (ix_outbox_due) or a time window; the windows on created_at and sent_at stay cheap as the
history grows only once those columns are indexed."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from core.extensions import db
from core.models import Appointment, Branch, Ticket

from . import kinds, outbox
from .models import InboxQuarantine, ModemStatus, OutboxMessage
from .models import OutboxStatus as O
from .phones import masked

RATE_WINDOW_MINUTES = 60  # the modem's measured rate: texts it sent in this many minutes
COUNT_WINDOW_HOURS = 24  # health's counts per status and lane cover texts created this recently
QUARANTINE_WINDOW_HOURS = 24
FAILING_IN_A_ROW = 3  # failed sends in a row that make a gateway "failing"
RECONNECT_LOOP = 5  # lost connections in the last hour that make a gateway "looping"
# Which buttons a row gets: what messaging.outbox.retry_now and .cancel accept (they decide again).
ACTIONS = {"retry": outbox.RETRYABLE, "cancel": outbox.CANCELLABLE}
# States a person must fix (a wrong PIN, a locked or missing SIM): no point waiting to report them.
NEEDS_A_PERSON = ("pin_rejected", "puk_required", "no_sim")


NO_BRANCH = 0  # (as a branch id) the texts of no branch: no branch has id 0


def scoped(query, model, branch_id):
    """The branch's rows; branch_id None means every branch (admins), NO_BRANCH the rows of none."""
    if branch_id is None:
        return query
    return query.where(model.branch_id.is_(None) if branch_id == NO_BRANCH else model.branch_id == branch_id)


def lane_of(kind: str, priority: int) -> str:
    known = kinds.KINDS.get(kind)
    if known is not None:
        return known.lane
    # A row written before its kind was in the table: its priority is its lane's rank.
    return next((lane.name for lane in kinds.LANES.values() if lane.rank == priority), "bulk")


def zone_of(branch: Branch | None) -> ZoneInfo:
    return branch.zone if branch is not None else ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])


def day_start(branch: Branch | None, now: datetime) -> datetime:
    """The start of today where the branch is (the installation's zone for every branch)."""
    zone = zone_of(branch)
    return datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)


# --- the listing -----------------------------------------------------------------------------

@dataclass
class Page:
    rows: list[dict]
    newer: int | None  # pass as after= for the newer page; None on the newest
    older: int | None  # pass as before= for the older page; None on the oldest


def _filtered(query, branch_id, status, lane, since):
    query = scoped(query, OutboxMessage, branch_id)
    if status:
        query = query.where(OutboxMessage.status == status)
    if lane:
        # A text's priority is its lane's rank, set when it is queued (messaging/outbox.py), so
        # the lane is one value of an indexed column (ix_outbox_branch_priority) rather than a
        # list of kinds, which no index reads in id order.
        query = query.where(OutboxMessage.priority == kinds.LANES[lane].rank)
    if since is not None:
        # Ids follow the order texts are written in: none written since `since` has an id below
        # the smallest of theirs, read from the day's rows by ix_outbox_branch_created (`id + 0`:
        # min(id) itself the databases read up the primary key from the oldest text, to the first
        # of today's). The bound stops a page read newest first in an index's id order at the
        # day's first text; by the time alone, a page of today's failed texts not yet full read
        # every failed text ever.
        first = scoped(select(func.min(OutboxMessage.id + 0)), OutboxMessage, branch_id).where(
            OutboxMessage.created_at >= since).scalar_subquery()
        query = query.where(OutboxMessage.created_at >= since, OutboxMessage.id >= first)
    return query


def listing(branch_id=None, *, status=None, lane=None, since=None, before=None, after=None, limit=50) -> Page:
    """One page of texts, newest first, by id (keyset: page 100 costs what page 1 does)."""
    if branch_id is None and (status or lane):
        return _every_branch(status=status, lane=lane, since=since, before=before, after=after, limit=limit)
    query = _filtered(
        select(OutboxMessage, Ticket.label, Appointment.booking_code)
        .outerjoin(Ticket, Ticket.id == OutboxMessage.ticket_id)
        .outerjoin(Appointment, Appointment.id == OutboxMessage.appointment_id),
        branch_id, status, lane, since)
    ids = _filtered(select(OutboxMessage.id), branch_id, status, lane, since)
    # The texts of no branch (a test text from the command line) in the order of the index that
    # finds them, its leading columns included: all the same here, but PostgreSQL takes an
    # `IS NULL` for a range, not one value, and would sort them all rather than read them in order.
    keys = ([OutboxMessage.branch_id, OutboxMessage.status if status else OutboxMessage.priority]
            if branch_id == NO_BRANCH and (status or lane) else [])
    if after is not None:
        found = db.session.execute(query.where(OutboxMessage.id > after)
                                   .order_by(*keys, OutboxMessage.id).limit(limit + 1)).all()
        more_newer, found = len(found) > limit, list(reversed(found[:limit]))
        more_older = bool(found) and _exists(ids.where(OutboxMessage.id < found[-1][0].id))
    else:
        if before is not None:
            query = query.where(OutboxMessage.id < before)
        found = db.session.execute(query.order_by(*(key.desc() for key in keys), OutboxMessage.id.desc())
                                   .limit(limit + 1)).all()
        more_older, found = len(found) > limit, found[:limit]
        more_newer = before is not None and bool(found) and _exists(ids.where(OutboxMessage.id > found[0][0].id))
    zones = _zones({message.branch_id for message, _, _ in found})
    rows = [_row(message, label, code, zones.get(message.branch_id)) for message, label, code in found]
    return Page(rows, rows[0]["id"] if rows and more_newer else None, rows[-1]["id"] if rows and more_older else None)


def _every_branch(*, status, lane, since, before, after, limit) -> Page:
    """listing() over every branch with a status or lane chosen: each branch's page (and that of
    the texts of no branch), merged. Each is read newest first from the branch's index
    (ix_outbox_branch_status, ix_outbox_branch_priority) and stops at its page; by status or lane
    alone over every branch, a rare one read every text of it ever to fill the page. A few
    queries a branch, on a page only administrators open."""
    branches = [*db.session.scalars(select(Branch.id).order_by(Branch.id)), NO_BRANCH]
    pages = [listing(branch, status=status, lane=lane, since=since, before=before, after=after, limit=limit)
             for branch in branches]
    rows = sorted((row for page in pages for row in page.rows), key=lambda row: row["id"], reverse=after is None)
    found = rows[:limit]
    # Each branch's page holds the branch's first `limit` rows past the keyset, so the merged page
    # is the first `limit` of them all; a branch with rows beyond its own page has some beyond the
    # merged one too (on the side the keyset reads toward), and a branch's rows on the other side
    # of its page lie past the keyset, beyond the merged page's end on that side as well.
    beyond = len(rows) > limit or any(page.older if after is None else page.newer for page in pages)
    behind = any(page.newer if after is None else page.older for page in pages)
    if after is not None:
        found.reverse()
    more_newer, more_older = (behind, beyond) if after is None else (beyond, behind)
    return Page(found, found[0]["id"] if found and more_newer else None, found[-1]["id"] if found and more_older else None)


def _exists(query) -> bool:
    return db.session.execute(query.limit(1)).first() is not None


def _zones(branch_ids) -> dict:
    ids = [i for i in branch_ids if i is not None]
    if not ids:
        return {}
    return {branch.id: branch.zone for branch in db.session.scalars(select(Branch).where(Branch.id.in_(ids)))}


def _local(moment, zone):
    return None if moment is None else moment.astimezone(zone or ZoneInfo("UTC"))


def _row(message: OutboxMessage, label, code, zone) -> dict:
    return {
        "id": message.id, "branch_id": message.branch_id, "status": message.status,
        "lane": lane_of(message.kind, message.priority), "kind": message.kind, "to": masked(message.to),
        "body": message.body, "last_error": message.last_error, "policy_note": message.policy_note,
        "attempts": message.attempts, "possible_duplicate": message.possible_duplicate,
        "ticket": label, "appointment": code, "parts": message.parts, "encoding": message.encoding,
        "sent_by": message.sent_by, "actions": [name for name, states in ACTIONS.items() if message.status in states],
        **{name: _local(getattr(message, name), zone)
           for name in ("created_at", "send_after", "sent_at", "delivered_at", "failed_at")},
    }


def quarantined(branch_id=None, limit=20) -> list[dict]:
    """Received texts that could not be read or stored, newest first."""
    rows = db.session.scalars(scoped(select(InboxQuarantine), InboxQuarantine, branch_id)
                              .order_by(InboxQuarantine.id.desc()).limit(limit)).all()
    zones = _zones({row.branch_id for row in rows})
    return [{"id": row.id, "branch_id": row.branch_id, "gateway": row.gateway, "memory": row.memory,
             "sender": masked(row.sender), "pdu": row.pdu, "error": row.error,
             "received_at": _local(row.received_at, zones.get(row.branch_id))} for row in rows]


def quarantined_since(branch_id, since, look_at=100) -> int:
    """How many texts were quarantined since `since`; counts at most `look_at` (ids follow time)."""
    newest = scoped(select(InboxQuarantine.received_at), InboxQuarantine, branch_id) \
        .order_by(InboxQuarantine.id.desc()).limit(look_at).subquery()
    return db.session.scalar(select(func.count()).select_from(newest).where(newest.c.received_at >= since))


# --- backlog, rate, drain --------------------------------------------------------------------

def backlog(branch_id, now) -> list[dict]:
    """Per lane, most urgent first: texts queued, how many are due, how long the oldest due one
    has waited, and whether that is longer than the lane allows."""
    rows = db.session.execute(scoped(
        select(OutboxMessage.kind, OutboxMessage.priority, func.count(), func.min(OutboxMessage.send_after),
               func.count().filter(OutboxMessage.send_after <= now))
        .where(OutboxMessage.status == O.QUEUED), OutboxMessage, branch_id)
        .group_by(OutboxMessage.kind, OutboxMessage.priority)).all()
    lanes = {name: {"lane": name, "queued": 0, "due": 0, "oldest_due_at": None} for name in kinds.LANES}
    for kind, priority, queued, first, due in rows:
        lane = lanes[lane_of(kind, priority)]
        lane["queued"] += queued
        lane["due"] += due
        if due and (lane["oldest_due_at"] is None or first < lane["oldest_due_at"]):
            lane["oldest_due_at"] = first  # the earliest queued row is due when any is
    result = []
    for lane in sorted(lanes.values(), key=lambda entry: -kinds.LANES[entry["lane"]].rank):
        limit = kinds.LANES[lane["lane"]].max_wait_minutes
        waited = (now - lane["oldest_due_at"]).total_seconds() / 60 if lane["oldest_due_at"] else None
        result.append({**lane, "oldest_wait_minutes": None if waited is None else int(waited),
                       "max_wait_minutes": limit, "over": waited is not None and waited > limit})
    return result


def send_rate(branch_id, now) -> float | None:
    """Texts per minute the gateways sent in the last hour, None when none were sent. While there
    is a backlog a gateway sends without pause, so then this is its real speed."""
    since = now - timedelta(minutes=RATE_WINDOW_MINUTES)
    sent = db.session.scalar(scoped(
        select(func.count()).select_from(OutboxMessage)
        .where(OutboxMessage.sent_at >= since, OutboxMessage.sent_by.is_not(None)), OutboxMessage, branch_id))
    return sent / RATE_WINDOW_MINUTES if sent else None


def drain(lanes: list[dict], rate: float | None) -> dict:
    due = sum(lane["due"] for lane in lanes)
    minutes = 0 if due == 0 else (math.ceil(due / rate) if rate else None)
    return {"due": due, "rate_per_minute": None if rate is None else round(rate, 2), "minutes": minutes}


# --- gateways and the verdict ----------------------------------------------------------------

def gateways(branch_id, now) -> list[dict]:
    """What every gateway serving the branch (or every gateway) last reported. A gateway that
    stopped updating its row is "silent": whatever it last said may no longer be true."""
    stale_after = timedelta(seconds=current_app.config["MODEM_HEALTH_SECONDS"] * 3)
    query = select(ModemStatus).order_by(ModemStatus.gateway)
    if branch_id is not None:
        query = query.where((ModemStatus.branch_id.is_(None)) | (ModemStatus.branch_id == branch_id))
    result = []
    for row in db.session.scalars(query):
        fresh = now - row.updated_at <= stale_after
        state = row.state if fresh or row.state == "stopped" else "silent"
        result.append({
            "gateway": row.gateway, "branch": row.branch_id, "port": row.port, "state": state,
            "reported_state": row.state, "state_since": row.state_since, "signal": row.signal,
            "network": row.network, "last_error": row.last_error, "sent_total": row.sent_total,
            "failed_in_a_row": row.failed_in_a_row, "reconnects": row.reconnects,
            "cooling_until": row.cooling_until, "imei": row.imei, "updated_at": row.updated_at,
        })
    return result


def _gateway_reasons(modem, now, degraded_after) -> list[dict]:
    name, state = modem["gateway"], modem["state"]
    if state == "stopped":
        return []  # stopped on purpose; if texts pile up, the lanes say so
    if state == "silent":
        return [{"reason": "modem_silent", "gateway": name, "since": modem["updated_at"]}]
    reasons = []
    since = modem["state_since"]
    cooling = state == "cooling" or (modem["cooling_until"] is not None and modem["cooling_until"] > now)
    long_enough = since is not None and (now - since).total_seconds() > degraded_after
    if state != "ready" and not cooling and (state in NEEDS_A_PERSON or long_enough):
        reasons.append({"reason": "modem_not_ready", "gateway": name, "state": state, "since": since})
    if cooling or modem["failed_in_a_row"] >= FAILING_IN_A_ROW:
        reasons.append({"reason": "sends_failing", "gateway": name, "failed_in_a_row": modem["failed_in_a_row"],
                        "cooling_until": modem["cooling_until"] if cooling else None})
    if modem["reconnects"] >= RECONNECT_LOOP:
        reasons.append({"reason": "reconnect_loop", "gateway": name, "reconnects": modem["reconnects"]})
    return reasons


def verdict(branch_id, now, degraded_after_seconds) -> dict:
    """"ok", or "degraded" with every reason: for health (every branch) and a branch's console."""
    modems = gateways(branch_id, now)
    lanes = backlog(branch_id, now)
    reasons = [reason for modem in modems for reason in _gateway_reasons(modem, now, degraded_after_seconds)]
    overdue = [lane for lane in lanes if lane["over"]]
    running = [modem for modem in modems if modem["state"] not in ("silent", "stopped")]
    if overdue and not running:
        reasons.insert(0, {"reason": "no_gateway"})
    reasons += [{"reason": "lane_overdue", "lane": lane["lane"], "queued": lane["queued"],
                 "oldest_wait_minutes": lane["oldest_wait_minutes"], "max_wait_minutes": lane["max_wait_minutes"]}
                for lane in overdue]
    quarantine = quarantined_since(branch_id, now - timedelta(hours=QUARANTINE_WINDOW_HOURS))
    if quarantine:
        reasons.append({"reason": "quarantine", "count": quarantine, "hours": QUARANTINE_WINDOW_HOURS})
    return {"status": "degraded" if reasons else "ok", "reasons": reasons, "modems": modems, "lanes": lanes}


def counts(branch_id, now) -> dict:
    """Texts created in the last day, per status and per lane and status."""
    since = now - timedelta(hours=COUNT_WINDOW_HOURS)
    rows = db.session.execute(scoped(
        select(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.status, func.count())
        .where(OutboxMessage.created_at >= since), OutboxMessage, branch_id)
        .group_by(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.status)).all()
    by_status = {status.value: 0 for status in O}
    by_lane = {lane: {status.value: 0 for status in O} for lane in kinds.LANES}
    for kind, priority, status, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        lane = by_lane[lane_of(kind, priority)]
        lane[status] = lane.get(status, 0) + count
    return {"since": since, "by_status": by_status, "by_lane": by_lane}


def jsonable(value):
    """Datetimes as ISO 8601 text, all the way down."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value
