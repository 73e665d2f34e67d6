"""The periodic jobs. Each is safe to run twice and keeps its state in database rows, never in
the scheduler: a restart loses nothing (surveys, for one, are outbox rows with send_after)."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from core import audit, backups, clock, engine, privacy
from core.errors import SeedError
from core.extensions import db
from core.models import Branch, Ticket
from core.models import TicketStatus as S
from messaging import inbox, notify
from messaging.models import OutboxMessage
from messaging.signals import outbox_queued

log = logging.getLogger(__name__)
LEFT_OPEN = (S.WAITING, S.HELD, S.CALLED, S.SERVING)
# Changes whose texts are looked for again: old enough that the process that made them has had
# its moment to write them (normal operation leaves nothing to do), young enough that the range
# stays small and the text still matters.
LOST_TEXTS_FROM = timedelta(minutes=10)
LOST_TEXTS_UNTIL = timedelta(seconds=20)


def dispatch() -> int:
    """Wake this process's gateways for texts whose send_after has come (gateways also poll)."""
    due = db.session.scalar(select(db.func.count(OutboxMessage.id)).where(
        OutboxMessage.status == "queued", OutboxMessage.send_after <= clock.now()))
    if due:
        outbox_queued.send(current_app._get_current_object(), message_id=None, branch_id=None)
    return due


def end_of_day() -> int:
    """Close tickets left open from earlier branch-local days (numbering restarts by itself each day)."""
    closed = 0
    for branch in db.session.scalars(select(Branch)).all():
        today = branch.local_date(clock.now())
        # Only open tickets are read (an index on branch and status): a bound on the day would make
        # the database walk years of finished ones. Today's open tickets are skipped here.
        rows = db.session.execute(select(Ticket.id, Ticket.service_day).where(
            Ticket.branch_id == branch.id, Ticket.status.in_(LEFT_OPEN))).all()
        leftovers = [ticket_id for ticket_id, day in rows if day < today]
        for ticket_id in leftovers:
            ticket = db.session.get(Ticket, ticket_id)
            try:
                if ticket.status == S.SERVING:
                    engine.complete(ticket_id)
                else:
                    engine.cancel(ticket_id, reason="end of day")
                closed += 1
            except SeedError as error:  # someone moved it meanwhile: fine
                log.info("end of day: ticket %s left as it is: %s", ticket_id, error.message)
    if closed:
        log.info("end of day: %d ticket(s) from earlier days closed", closed)
    return closed


def join_stale_parts() -> int:
    """Join parts of long texts whose siblings never came."""
    return len(inbox.join_stale_parts())


def handle_unhandled_replies() -> int:
    """Hand texts that were stored but never handled (a crash in between) to the reply router."""
    return inbox.handle_unhandled()


def lost_texts() -> int:
    """Queue the texts of recent ticket changes that never got them. A change's own text commits
    with it, but one could not always be written there (a template that failed until mended, a
    change by an older Seed), and the texts a move owes those behind it are written after its
    commit: a process that dies in between would lose them. They are written by the same code,
    whose notices (one per ticket and kind) keep a text that was queued from being queued twice;
    one whose ticket has moved on is cancelled by the gateway's stale check. Returns the changes
    whose own text was written now."""
    now = clock.now()
    lost = notify.unwritten(now - LOST_TEXTS_FROM, now - LOST_TEXTS_UNTIL)
    app = current_app._get_current_object()
    for change in lost:
        notify.on_ticket_changed(app, change)
    for branch_id in notify.moved(now - LOST_TEXTS_FROM, now - LOST_TEXTS_UNTIL):
        notify.catch_up(branch_id)  # texts a move owed those behind, lost with the process that made it
    if lost:
        log.warning("lost texts: %d ticket change(s) had no texts; written now", len(lost))
    return len(lost)


def appointment_reminders() -> int:
    """Remind appointments at each lead time, once (safe to rerun)."""
    from messaging.appointment_texts import send_reminders

    return send_reminders()


def anonymise_old_visits() -> int:
    """Personal data of visits older than RETENTION_DAYS goes (core/privacy.py). Every run is
    bounded (RETENTION_BATCH rows per table) and cheap when nothing is due, so it runs often
    rather than once a night: a backlog drains over a few runs, and a missed night loses nothing."""
    done = privacy.anonymise()
    if done:
        audit.record("data.anonymised", detail=done)
        log.info("retention: anonymised %s", ", ".join(f"{key} {count}" for key, count in done.items()))
    return sum(done.values())


def nightly_backup() -> int:
    """Back the database up once a night, keeping the newest BACKUP_KEEP (0: no nightly backups).
    Due when no backup was made since BACKUP_TIME last came (installation-local); the backups
    folder is the state, so a box that was off then makes it when it is back, and a second run
    finds it made. Only files named by core/backups are ever deleted."""
    config = current_app.config
    keep = int(config["BACKUP_KEEP"] or 0)
    if keep <= 0:
        return 0
    where = backups.folder()
    if not backups.due(where, clock.now(), config["BACKUP_TIME"], config["DEFAULT_TIMEZONE"]):
        return 0
    made = backups.make()
    gone = backups.prune(where, keep)
    log.info("backup: %s (%d bytes, migration %s); %d older one(s) deleted, keeping %d",
             made.path, made.size, made.revision, len(gone), keep)
    return 1


JOBS = {
    # id: (function, seconds between runs)
    "dispatch-outbox": (dispatch, 15),
    "end-of-day": (end_of_day, 300),
    "join-stale-parts": (join_stale_parts, 60),
    "appointment-reminders": (appointment_reminders, 60),
    "handle-unhandled-replies": (handle_unhandled_replies, 60),
    "lost-texts": (lost_texts, 60),
    "anonymise-old-visits": (anonymise_old_visits, 600),
    "nightly-backup": (nightly_backup, 600),
}
# A reply stored just before a crash is handled as soon as the scheduler is back.
RUN_AT_START = {"handle-unhandled-replies", "lost-texts"}


