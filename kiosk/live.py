"""The customer's status page, live: the /status Socket.IO namespace pushes a ticket's status (the
same dict as /t/<token>.json) to its open pages whenever it changes, instead of the page polling.

A page connects with its ticket's status token (a real ticket's, looked up as the page itself is)
and joins its ticket's room. The statuses are built by the display's update worker
(display/realtime.py), after the change committed, once per batch of a branch's changes and only
while a status page of that branch is connected here: one positions query for the branch and one
query for the watched tickets, however many pages are open; each page then costs one emit, and
only when its ticket's status changed since the last push.

Which tickets are watched is known only to the process the pages are connected to: with several
processes, a change made in another one reaches this one as a notice (display/across.py), and
this process publishes to its own pages."""
from __future__ import annotations

import functools
import threading
from collections import Counter as Tally

from flask import current_app, request
from flask_socketio import Namespace, emit, join_room
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from core import clock
from core.extensions import db, socketio
from core.models import Ticket
from core.models import TicketStatus as S
from core.queries import open_counters, positions, service_minutes, wait_minutes
from display import realtime

from .routes import TicketGone, status_of, ticket_by_token

NAMESPACE = "/status"
EVENT = "status"
EXTENSION = "seed.live_status"
YIELD_EVERY = 50  # pages told between two turns of the requests waiting (display/realtime.py)


def room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


class Watchers(realtime.Watchers):
    """The status pages connected to this process: per branch (whether to publish) and per ticket
    (what to publish), with the status each ticket's pages were last sent."""

    def __init__(self, app):
        super().__init__(app)
        self.tickets: dict[str, int] = {}  # Socket.IO session id -> ticket id
        self.pages = Tally()  # ticket id -> its pages connected here
        self.sent: dict[int, dict] = {}  # ticket id -> the status its room was last sent
        # Held while a status is built and sent, so a page never gets an older status after a newer
        # one (a connect's first status racing the worker's push).
        self.sending = threading.Lock()

    def watch_ticket(self, sid: str, ticket: Ticket) -> None:
        with self.lock:
            self.watch(sid, ticket.branch_id)
            self.tickets[sid] = ticket.id
            self.pages[ticket.id] += 1

    def forget(self, sid: str) -> None:
        with self.lock:
            super().forget(sid)
            ticket_id = self.tickets.pop(sid, None)
            if ticket_id is not None:
                self.pages[ticket_id] -= 1
                if self.pages[ticket_id] <= 0:
                    del self.pages[ticket_id]
                    self.sent.pop(ticket_id, None)

    def watched(self, branch_id: int) -> bool:
        """Pages of the branch connected to this process (not "maybe elsewhere": the others publish
        to their own pages)."""
        with self.lock:
            return self.watching[branch_id] > 0

    def branches(self) -> list[int]:
        with self.lock:
            return list(self.watching)

    def watched_tickets(self, branch_id: int) -> set[int]:
        with self.lock:
            return {ticket_id for sid, ticket_id in self.tickets.items() if self.sessions.get(sid) == branch_id}

    def first(self, sid: str, ticket: Ticket) -> dict:
        """A page's first status, on connect: built and sent under the same lock as the pushes. Other
        processes' changes are heard from before it is built, so none made after it is missed."""
        realtime.listen(self.app)
        with self.sending:
            self.watch_ticket(sid, ticket)
            status = status_of(ticket)
            emit(EVENT, status)
            with self.lock:
                self.sent.setdefault(ticket.id, status)  # the other pages of the ticket keep what they had
            return status

    def publish(self, branch_id: int) -> None:
        """Called by the display's worker, in an app context, after the change committed."""
        with self.sending:
            ticket_ids = self.watched_tickets(branch_id)
            if not ticket_ids:
                return
            def pause() -> bool:
                """Serve the requests waiting; True: stop, a newer change will publish again."""
                realtime.let_requests_in()
                return realtime.updates(self.app).superseded(branch_id)

            found = statuses(branch_id, ticket_ids, pause=pause)
            db.session.rollback()  # (no read transaction held while requests are served in between)
            if found is None:
                return
            emitted = 0
            for ticket_id, status in found.items():
                with self.lock:
                    if ticket_id not in self.pages or self.sent.get(ticket_id) == status:
                        continue
                    self.sent[ticket_id] = status
                # To this process's pages only: every process publishes to its own (see above).
                socketio.emit(EVENT, status, to=room(ticket_id), namespace=NAMESPACE, ignore_queue=True)
                emitted += 1
                if emitted % YIELD_EVERY == 0 and pause():
                    return


@functools.cache  # built once, bound at each use (see core/queries.py)
def _tickets_of_branch():
    return (select(Ticket).where(Ticket.id.in_(bindparam("tickets", expanding=True)), Ticket.branch_id == bindparam("branch"))
            .options(joinedload(Ticket.service), joinedload(Ticket.counter), joinedload(Ticket.branch))
            .execution_options(populate_existing=True))


def statuses(branch_id: int, ticket_ids, pause=None) -> dict[int, dict] | None:
    """{ticket id: status} for these tickets of the branch: one positions query for the whole
    branch, one for the tickets (with their services, counters and branch: a late ticket's time is
    told in its zone); the wait estimate's figures once per service among them, never per ticket.
    `pause()` is called between every YIELD_EVERY statuses: when it says so, None (stopped)."""
    places = positions(branch_id)
    tickets = db.session.scalars(_tickets_of_branch(), {"tickets": list(ticket_ids), "branch": branch_id}).all()
    per_service: dict[int, tuple[float, int]] = {}
    found, now = {}, clock.now()  # (one moment for them all)
    for count, ticket in enumerate(tickets, 1):
        if pause is not None and count % YIELD_EVERY == 0 and pause():
            return None
        place = places.get(ticket.id) if ticket.status == S.WAITING else None
        wait = None
        if place is not None:
            if ticket.service_id not in per_service:
                per_service[ticket.service_id] = (service_minutes(ticket.service), open_counters(ticket.service))
            wait = wait_minutes(place - 1, *per_service[ticket.service_id])
        found[ticket.id] = status_of(ticket, place, wait, now)
    return found


def watchers(app=None) -> Watchers:
    return (app or current_app).extensions[EXTENSION]


class StatusNamespace(Namespace):
    def on_connect(self, auth=None):
        """A live ticket's status token, nothing else: the page's own link is the only key."""
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            ticket = ticket_by_token(token) if isinstance(token, str) else None
        except TicketGone:
            ticket = None
        if ticket is None:
            raise ConnectionRefusedError()
        join_room(room(ticket.id))
        watchers().first(request.sid, ticket)

    def on_disconnect(self, reason=None):
        watchers().forget(request.sid)


def init_app(app) -> None:
    found = app.extensions[EXTENSION] = Watchers(app)
    socketio.on_namespace(StatusNamespace(NAMESPACE))
    realtime.follow(app, found.watched, found.publish, here=found.branches)
