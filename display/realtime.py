"""The /display Socket.IO namespace: one room per branch, a full snapshot on every connect, and
an update (the change plus the state after it) for every committed ticket change.

A ticket-changing request only notes the change: the snapshot is built after the commit by one
worker thread per process, once for all the changes of a branch that arrived while it was busy,
and not at all while no screen of that branch is connected. Every change reaches every screen, so
each call is announced, one after another: on its own, or with the changes made while the screens
were being told (one frame, "events", oldest first). A change that calls nobody (a check-in, a
completion) waits a quarter of a second for company: the next call takes it along, a burst of
check-ins is one frame; a call goes at once. The screens of one process are told in
groups, the requests waiting served between two groups, and the consoles', status pages' and
reports' pushes (followers) give way to a change waiting for the screens.

Other pushes about a branch's queue (the reports' live figures) ride on the same worker as
followers (follow()): each is asked once per batch of a branch's changes, only while it has
someone watching that branch.

Several processes (web workers, the scheduler, gateways) share displays through the Socket.IO
message queue: the process where a change happened builds the snapshot once and its emit reaches
every process's screens. A follower that keeps per-process state (the status pages: which tickets
are watched here) cannot be served from another process, so each process runs those for its own
pages: the changing process tells the others which branches changed, and each one that has such
pages of the branch publishes to them. And a call is announced once even when the process that
made it dies before announcing it. Both in display/across.py."""
from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import Counter as Tally

from flask import current_app, request
from flask_socketio import Namespace, emit, join_room

from core.cooperative import let_others_run
from core.extensions import db, socketio
from core.models import Counter, Ticket

from . import snapshot
from .across import ANNOUNCED, Across, join_message_queue  # noqa: F401  (run.py calls join_message_queue)

log = logging.getLogger(__name__)
NAMESPACE = "/display"
EXTENSION = "seed.display_updates"
# [(watching(branch id) -> bool, publish(branch id), branches watched here() or None)]
FOLLOWERS = "seed.display_followers"
IDLE_SECONDS = 60  # the worker thread ends after this long without a change; the next one starts it again
# A branch's screens are told in this many groups, one after another, with the requests waiting
# served between two groups: a check-in never waits for a whole fan-out to 1,000 screens (one
# process; with a message queue, one room: see _group_rooms).
SCREEN_GROUPS = 16
# While a fan-out is under way, changes of the same branch join it (one frame per screen carries
# them all) for at most this long; then the followers (consoles, status pages) get their turn.
MERGE_SECONDS = 0.5
# How long a group waits for the requests that are ready to be served (gevent): at most this.
YIELD_SECONDS = 0.05
# The followers (consoles, status pages) give way to newer changes for the screens for at most this long.
FOLLOWERS_WAIT_SECONDS = 1.0
# A change that calls nobody (a check-in, a completion, a counter opened) waits this long for
# company before the branch's screens and followers are told: a call made meanwhile takes it along
# in its own frame, and a burst of them costs one fan-out, not one each. A call never waits.
HOLD_SECONDS = 0.25


def room(branch_id: int) -> str:
    return f"branch:{branch_id}"


def group_room(branch_id: int, sid: str) -> str:
    return f"branch:{branch_id}:{_group(sid)}"


def _group_rooms(branch_id: int, occupied: set[int]) -> list[str]:
    """The rooms a change is told to, one after another. With a message queue, the branch's one
    room: a call's announcement must go out whole or not at all (a process killed half-way through
    the groups would leave its note to be announced again, twice on the screens told already:
    display/across.py); each process then writes the frame to its own screens. Without one, the
    groups that hold a screen of the branch here (`occupied`, group numbers): a frame is encoded
    for each room told, an empty one too."""
    if current_app.config["SOCKETIO_MESSAGE_QUEUE"]:
        return [room(branch_id)]
    return [f"branch:{branch_id}:{group}" for group in range(SCREEN_GROUPS) if group in occupied]


def _group(sid: str) -> int:
    return zlib.crc32(sid.encode()) % SCREEN_GROUPS


def frame(events: list, state: dict) -> dict:
    """One update: {"event", "snapshot"} for one change (or none: a counter's), {"events",
    "snapshot"} for several that reached a screen together, oldest first."""
    events = [event for event in events if event is not None]
    if len(events) > 1:
        return {"events": events, "snapshot": state}
    return {"event": events[0] if events else None, "snapshot": state}


def events_of(update: dict) -> list:
    """The changes one update carries, oldest first (tests and the benches read updates so)."""
    return update["events"] if "events" in update else [update.get("event")]


def let_requests_in() -> None:
    """Under gevent, wait (at most YIELD_SECONDS) until the hub has nothing else to do: the
    frames just queued are written and the requests that arrived meanwhile are served first.
    Elsewhere (threads: tests, the development server) just give way."""
    if socketio.server is not None and socketio.server.eio.async_mode == "gevent":
        let_others_run(YIELD_SECONDS)
    else:
        socketio.sleep(0)


class Watchers:
    """The Socket.IO sessions connected to this process, per branch: whom a push is for. The
    displays' screens here; the reports' live pages (reports/live.py) use it too."""

    def __init__(self, app, lock=None):
        self.app = app
        self.lock = lock or threading.RLock()
        self.sessions: dict[str, int] = {}  # Socket.IO session id -> branch id
        self.watching = Tally()  # branch id -> sessions connected here

    def watch(self, sid: str, branch_id: int) -> None:
        with self.lock:
            self.forget(sid)
            self.sessions[sid] = branch_id
            self.watching[branch_id] += 1

    def forget(self, sid: str) -> None:
        with self.lock:
            branch_id = self.sessions.pop(sid, None)
            if branch_id is not None:
                self.watching[branch_id] -= 1
                if self.watching[branch_id] <= 0:
                    del self.watching[branch_id]

    def watched(self, branch_id: int) -> bool:
        # With a message queue, sessions may be connected to another process: publish always.
        return bool(self.app.config["SOCKETIO_MESSAGE_QUEUE"]) or self.watching[branch_id] > 0


class Updates(Watchers):
    """The changes waiting to be published, the screens connected to this process, and the worker."""

    def __init__(self, app):
        super().__init__(app, threading.Condition(threading.RLock()))
        # (branch id, TicketChange or None, heard, note): in commit order; heard: a change another
        # process made, for this process's per-process followers only; note: a call's, see across.py
        self.pending: list[tuple[int, object, bool, str | None]] = []
        self.busy = False
        self.worker = None
        self.builds = 0  # snapshots built for updates (tests and the bench read it)
        self.owed_since: dict[int, float] = {}  # branch id -> when its followers were first owed a publish
        # branch id -> (when the first came, [(change, note)]): changes that call nobody, waiting
        # for company (HOLD_SECONDS); and the branches with calls left unannounced elsewhere
        self.held: dict[int, tuple[float, list]] = {}
        self.due: set[int] = set()
        self.across = Across(self)
        self.groups = Tally()  # (branch id, group) -> displays' screens connected here
        self.screens: set[str] = set()  # their session ids (the others watching are followers')

    def watch_screen(self, sid: str, branch_id: int) -> None:
        """A display's screen, in its group's room (group_room), connected to this process."""
        with self.lock:
            self.watch(sid, branch_id)  # (which forgets what the session watched before)
            self.groups[branch_id, _group(sid)] += 1
            self.screens.add(sid)

    def forget(self, sid: str) -> None:
        with self.lock:
            branch_id = self.sessions.get(sid)
            if sid in self.screens:
                self.screens.discard(sid)
                key = (branch_id, _group(sid))
                self.groups[key] -= 1
                if self.groups[key] <= 0:
                    del self.groups[key]
            super().forget(sid)

    def occupied(self, branch_id: int) -> set[int]:
        with self.lock:
            return {group for (branch, group) in self.groups if branch == branch_id}

    def followers(self, branch_id: int, heard: bool = False) -> list:
        return [publish for watching, publish, here in self.app.extensions.get(FOLLOWERS, ())
                if (here or not heard) and watching(branch_id)]

    def wanted(self, branch_id: int) -> bool:
        # (with a message queue, watched() is always true: the changes are told to the others too)
        return self.watched(branch_id) or bool(self.followers(branch_id))

    def submit(self, branch_id: int, change) -> None:
        """Called in the request, after the commit: costs an append, never a query (with several
        processes, a call also costs a note in Redis: see across.py)."""
        with self.lock:
            if not self.wanted(branch_id):
                return
        note = self.across.note(change)
        with self.lock:
            self._add((branch_id, change, False, note))

    def heard(self, branch_id: int) -> None:
        """Another process changed the branch's queue: publish to this process's own pages of it."""
        with self.lock:
            if self.followers(branch_id, heard=True):
                self._add((branch_id, None, True, None))

    def orphaned(self, branch_id: int) -> None:
        """Calls of the branch are overdue for their announcement (across.py): publish them."""
        with self.lock:
            self.due.add(branch_id)
            self._add((branch_id, None, False, None))

    def _add(self, entry) -> None:
        self.pending.append(entry)
        if self.worker is None:
            self.worker = socketio.start_background_task(self._run)
        self.lock.notify_all()

    def settle(self, timeout: float = 10) -> bool:
        """Wait until every change noted so far has been published (tests, the bench)."""
        with self.lock:
            return self.lock.wait_for(lambda: not self.pending and not self.busy, timeout)

    def _run(self) -> None:
        # branch id -> its followers are owed a publish: True all of them, False only those that
        # serve this process's own sessions (another process changed the branch)
        owed: dict[int, bool] = {}
        while True:
            with self.lock:
                # (a branch with changes held waits for them to go: its followers go after its screens)
                ready = [branch_id for branch_id in owed if branch_id not in self.held]
                if not ready and not self.held:
                    if not self.lock.wait_for(lambda: self.pending, IDLE_SECONDS):
                        self.worker = None
                        return
                elif not ready:  # only held changes: wait for company until the first one's time is up
                    self.lock.wait_for(lambda: self.pending, max(0.0, self._hold_ends() - time.monotonic()))
                batch, self.pending, self.busy = self.pending, [], True
            try:
                with self.app.app_context():
                    try:
                        # The screens first: a change waiting for them goes before the followers
                        # (consoles, status pages, reports) owed by earlier ones, a branch at a time.
                        if batch:
                            self._publish(batch, owed)
                        elif self.held and self._hold_ends() <= time.monotonic():
                            self._release(owed)
                        elif ready:
                            self._follow_one(owed, ready[0])
                    finally:
                        db.session.remove()  # no read transaction left open between batches
            except Exception:  # noqa: BLE001  (a display problem must never stop later updates)
                log.exception("display update failed")
            finally:
                with self.lock:
                    self.busy = bool(owed) or bool(self.held)
                    self.lock.notify_all()

    def _follow_one(self, owed: dict[int, bool], branch_id: int) -> None:
        """The followers of the branch (the one owed longest with no change held), unless a change
        comes for the screens: then they stop where they are (what they were sending is out of
        date) and are owed again."""
        everyone = owed.pop(branch_id)
        for publish in self.followers(branch_id, heard=not everyone):
            let_requests_in()  # (the frames written, and the requests waiting served, first)
            if self.superseded(branch_id):
                break
            _follow(publish, branch_id)
        if self.superseded(branch_id):
            owed[branch_id] = owed.get(branch_id, False) or everyone
        elif branch_id not in owed:
            self.owed_since.pop(branch_id, None)

    def superseded(self, branch_id: int) -> bool:
        """Whether a follower's publish for the branch should stop where it is: a change is waiting
        for the screens, and the branch's followers have not been waiting for longer than
        FOLLOWERS_WAIT_SECONDS (so a stream of changes delays them, never starves them)."""
        with self.lock:
            since = self.owed_since.get(branch_id)
            if since is None or time.monotonic() - since > FOLLOWERS_WAIT_SECONDS:
                return False
            return any(not heard for _branch_id, _change, heard, _note in self.pending)

    def _publish(self, batch, owed: dict[int, bool]) -> None:
        branches: dict[int, list] = {}
        now = time.monotonic()
        for branch_id, change, from_elsewhere, note in batch:
            if from_elsewhere:
                owed.setdefault(branch_id, False)
            else:
                branches.setdefault(branch_id, []).append((change, note))
            self.owed_since.setdefault(branch_id, now)
        for branch_id, changes in branches.items():
            with self.lock:
                urgent = branch_id in self.due or any(_announces(change) for change, _note in changes)
                self.due.discard(branch_id)
                since, waiting = self.held.pop(branch_id, (now, []))
                changes = waiting + changes
                if not urgent and HOLD_SECONDS > 0:
                    self.held[branch_id] = (since, changes)  # told with the next call, or when its time is up
                    continue
            self._tell(branch_id, changes, owed)
        if branches:
            self.across.tell(list(branches))

    def _hold_ends(self) -> float:
        with self.lock:
            return min(since for since, _changes in self.held.values()) + HOLD_SECONDS

    def _release(self, owed: dict[int, bool]) -> None:
        """Tell the branches whose held changes found no company in time."""
        now = time.monotonic()
        with self.lock:
            ready = [branch_id for branch_id, (since, _changes) in self.held.items() if since + HOLD_SECONDS <= now]
            released = [(branch_id, self.held.pop(branch_id)[1]) for branch_id in ready]
        for branch_id, changes in released:
            self._tell(branch_id, changes, owed)

    def _tell(self, branch_id: int, changes, owed: dict[int, bool]) -> None:
        if self.watched(branch_id):
            self._screens(branch_id, changes)
        owed[branch_id] = True

    def _more(self, branch_id: int) -> list:
        """This branch's changes that arrived since the batch began (taken out of `pending`)."""
        with self.lock:
            mine = [entry for entry in self.pending if entry[0] == branch_id and not entry[2]]
            if mine:
                self.pending = [entry for entry in self.pending if not (entry[0] == branch_id and not entry[2])]
            return [(change, note) for _branch_id, change, _heard, note in mine]

    def _taken(self, branch_id: int, changes) -> list:
        # Calls other processes left unannounced first (they are older), then this batch's; a call
        # whose note another process took is announced by that process (display/across.py).
        return self.across.orphans(branch_id) + [
            (change, note) for change, note in changes
            if change is not None and (note is None or self.across.take(branch_id, note))]

    def _screens(self, branch_id: int, changes) -> None:
        """Every screen of the branch gets every change, in order, with the state after the last.
        The screens are told group by group (SCREEN_GROUPS), serving the requests that arrived
        between two groups; the changes made meanwhile join the fan-out: the groups not told yet
        get the old and the new in one frame, the others the new ones."""
        state = snapshot.build(branch_id)
        self.builds += 1
        if state is None:
            return
        groups = _group_rooms(branch_id, self.occupied(branch_id))
        # what each group is still owed: (event, its call's note or None); a note is done (across.py)
        # as soon as every group has been told of its call, not at the end of a long fan-out
        owed = {name: [] for name in groups}
        untold: dict[str, int] = {}  # note -> groups not told yet

        def add(changes) -> None:
            taken = self._taken(branch_id, changes)
            for change, note in taken:
                if note is not None:
                    untold[note] = len(groups)
            events = [(_event(change), note) for change, note in taken]  # (the same for every group)
            for name in groups:  # (the groups told already go last)
                owed.setdefault(name, []).extend(events)

        add(changes)
        began = time.monotonic()
        # (an error leaves its notes untold: announced later by whoever sweeps, see across.py)
        while owed:
            name = next(iter(owed))
            items = owed.pop(name)
            # (with a message queue configured, each emit travels through Redis)
            socketio.emit("update", frame([event for event, _note in items], state), to=name, namespace=NAMESPACE)
            told = []
            for _told_event, note in items:
                if note is not None:
                    untold[note] -= 1
                    if not untold[note]:
                        del untold[note]
                        told.append(note)
            self.across.done(branch_id, told)
            let_requests_in()
            # Changes made meanwhile join while some group has not been told yet (one frame brings
            # it both); once every group has been, they wait in `pending` like any other change
            # (held for company, or told at once if they call someone). Joining then too rebuilt
            # the snapshot after nearly every check-in of a steady stream, a build per request.
            joining = owed and time.monotonic() - began < MERGE_SECONDS
            more = self._more(branch_id) if joining else []
            if more:
                db.session.rollback()  # a new read transaction: one that sees the new changes
                state = snapshot.build(branch_id) or state
                self.builds += 1
                add(more)
                for name in groups:  # a change of no call (a counter's) still sends the new state
                    owed.setdefault(name, [])


def _follow(publish, branch_id: int) -> None:
    try:
        publish(branch_id)
    except Exception:  # noqa: BLE001  (a follower's problem must never stop the screens' updates)
        log.exception("live push failed")
        db.session.rollback()


def follow(app, watching, publish, here=None) -> None:
    """Have `publish(branch_id)` called by the worker, in an app context, once per batch of that
    branch's changes while `watching(branch_id)` says someone wants them. Any package may follow,
    before or after this one's init_app.

    here: for a `publish` that reaches only this process's own sessions (it keeps state about them):
    a function giving the branches it has sessions of here. Then `publish` is also called for
    changes other processes made (display/across.py), and `watching` says whether this process has sessions
    of the branch."""
    app.extensions.setdefault(FOLLOWERS, []).append((watching, publish, here))


def listen(app=None) -> None:
    """A per-process follower's first session connected here: hear other processes' changes."""
    updates(app).across.listen()


def updates(app=None) -> Updates:
    return (app or current_app).extensions[EXTENSION]


def settle(timeout: float = 10) -> bool:
    return updates().settle(timeout)


def _announces(change) -> bool:
    return change is not None and change.kind in ANNOUNCED


def _event(change) -> dict:
    # A new ticket's service is in its change (a burst of check-ins would read each ticket again);
    # a called one is among the snapshot's, loaded already.
    service = change.detail.get("service") if change.kind == "issued" else None
    if service is None:
        ticket = db.session.get(Ticket, change.ticket_id)
        service = ticket.service.code if ticket else None
    counter = None
    if change.counter_id is not None:
        found = db.session.get(Counter, change.counter_id)
        counter = found.name if found else None
    return {"kind": change.kind, "number": change.label, "counter": counter, "status": change.status,
            "service": service,
            "announce": _announces(change) and counter is not None}


class DisplayNamespace(Namespace):
    def on_connect(self, auth=None):
        branch_id = (auth or {}).get("branch") if isinstance(auth, dict) else None
        branch_id = branch_id or request.args.get("branch", type=int)
        state = snapshot.build(int(branch_id)) if str(branch_id or "").isdigit() else None
        if state is None:
            raise ConnectionRefusedError("unknown branch")
        join_room(room(state["branch"]["id"]))
        join_room(group_room(state["branch"]["id"], request.sid))
        updates().watch_screen(request.sid, state["branch"]["id"])
        emit("snapshot", state)

    def on_disconnect(self, reason=None):
        updates().forget(request.sid)

    def on_resync(self, data=None):
        branch_id = (data or {}).get("branch") if isinstance(data, dict) else None
        state = snapshot.build(int(branch_id)) if str(branch_id or "").isdigit() else None
        if state is not None:
            emit("snapshot", state)


def on_ticket_changed(app, change):
    updates(app).submit(change.branch_id, change)


def on_counter_changed(app, branch_id, **_):
    updates(app).submit(branch_id, None)


def init_app(app) -> None:
    from core.events import counter_changed, ticket_changed

    app.extensions[EXTENSION] = Updates(app)  # its thread starts with the first change to publish
    # socketio.init_app (create_app's init_realtime) made this app's server: register on it.
    socketio.on_namespace(DisplayNamespace(NAMESPACE))
    ticket_changed.connect(on_ticket_changed, sender=app)
    counter_changed.connect(on_counter_changed, sender=app)
