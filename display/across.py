"""Between the processes that share a Redis message queue (web workers, the scheduler, gateways):
what the Socket.IO message queue alone does not carry.

- Notices: "these branches changed", for the followers that publish per process (the status pages:
  which tickets are watched is known only where their pages are connected). The changing process
  publishes once per batch; every process listening hears it and publishes to its own pages.
- Announcements, exactly once: a call is announced on the screens by the process that made it,
  after the commit, from its update worker. A process killed in between would take the call's
  announcement with it, so the call is first noted in Redis (in the request, after the commit),
  and whoever takes the note announces it: the maker, normally at once, or, when the note is
  older than ANNOUNCE_GRACE_SECONDS (the maker died or lags), any other process sweeping. A note
  taken stays in Redis until its announcement is out: one whose announcer died meanwhile is taken
  again after twice the grace.

Nothing here runs without a Redis message queue: one process needs none of it.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from core.events import TicketChange
from core.extensions import socketio

log = logging.getLogger(__name__)
ANNOUNCED = {"called", "recalled"}
ANNOUNCE_GRACE_SECONDS = 2.0  # a note this old is announced by whoever sweeps first
ANNOUNCE_STALE_SECONDS = 300  # older than this, a call is no news: dropped unannounced
SWEEP_SECONDS = 1.0


class Across:
    def __init__(self, updates):
        self.updates = updates  # display.realtime.Updates: heard() and orphaned() are called on it
        self.listening = None  # threading.Event, set once subscribed; one listener per process
        self.listener_pid = None
        self.client, self.client_pid = None, None
        self.lock = threading.Lock()

    @property
    def url(self) -> str | None:
        queue = self.updates.app.config["SOCKETIO_MESSAGE_QUEUE"]
        return queue if isinstance(queue, str) and queue.startswith(("redis://", "rediss://", "unix://")) else None

    def _key(self, name: str) -> str:
        return f"{self.updates.app.config['SOCKETIO_CHANNEL']}:{name}"

    @staticmethod
    def me() -> str:
        return f"{socket.gethostname()}:{os.getpid()}"  # after a fork (gunicorn's workers), a new one

    def redis(self):
        if self.client is None or self.client_pid != os.getpid():  # never a connection from before a fork
            import redis

            self.client, self.client_pid = redis.Redis.from_url(self.url, socket_timeout=5), os.getpid()
        return self.client

    # --- notices ------------------------------------------------------------------------------

    def wanted(self) -> bool:
        from .realtime import FOLLOWERS

        return self.url is not None and any(here for _w, _p, here in self.updates.app.extensions.get(FOLLOWERS, ()))

    def tell(self, branch_ids: list[int]) -> None:
        if not self.wanted():
            return
        try:
            self.redis().publish(self._key("changed"), json.dumps({"from": self.me(), "branches": branch_ids}))
        except Exception:  # noqa: BLE001  (other processes' status pages miss one push; screens do not)
            log.exception("could not tell the other processes of a change")
            self.client = None

    def listen(self, timeout: float = 5) -> None:
        """Hear other processes' changes (and sweep announcements) from now on: returns once
        subscribed (or after `timeout`), so that a page connecting now misses no change made
        after its first status was built."""
        if self.url is None:
            return
        with self.lock:
            if self.listener_pid != os.getpid():
                self.listener_pid, self.listening = os.getpid(), threading.Event()
                socketio.start_background_task(self._listen, self.listening)
            listening = self.listening
        listening.wait(timeout)

    def _listen(self, listening) -> None:
        import redis

        delay, channel = 0.5, self._key("changed")
        while True:
            try:
                pubsub = redis.Redis.from_url(self.url).pubsub()
                pubsub.subscribe(channel)
                while (message := pubsub.get_message(timeout=5)) is None or message["type"] != "subscribe":
                    pass
                if listening.is_set():  # again, after losing Redis: what changed meanwhile is unknown
                    self._heard_all()
                listening.set()
                delay, next_sweep = 0.5, time.monotonic() + SWEEP_SECONDS
                while True:
                    message = pubsub.get_message(ignore_subscribe_messages=True, timeout=SWEEP_SECONDS)
                    if message is not None and message["type"] == "message":
                        self._heard(message["data"])
                    if time.monotonic() >= next_sweep:
                        self.sweep()
                        next_sweep = time.monotonic() + SWEEP_SECONDS
            except Exception:  # noqa: BLE001  (Redis away: try again; the pages' first statuses still come)
                log.exception("display notices: Redis listener failed; retrying in %.0f s", delay)
                socketio.sleep(delay)
                delay = min(delay * 2, 30)

    def _heard(self, data) -> None:
        try:
            notice = json.loads(data)
            if notice.get("from") == self.me():
                return
            for branch_id in notice.get("branches", ()):
                self.updates.heard(int(branch_id))
        except (ValueError, TypeError, AttributeError):
            log.warning("display notices: ignored a notice that is not ours")

    def _heard_all(self) -> None:
        from .realtime import FOLLOWERS

        for _watching, _publish, here in self.updates.app.extensions.get(FOLLOWERS, ()):
            for branch_id in here() if here else ():
                self.updates.heard(branch_id)

    # --- announcements, exactly once --------------------------------------------------------------

    # Move a note from waiting (KEYS[1]) to being announced (KEYS[2], scored with the time): by one
    # process only. A note being announced for longer than ANNOUNCE_GRACE_SECONDS x 2 (its announcer
    # died between taking it and emitting) may be taken again (ARGV[3], the cutoff).
    TAKE = """
        if redis.call('zrem', KEYS[1], ARGV[1]) == 1 then
            redis.call('zadd', KEYS[2], ARGV[2], ARGV[1])
            redis.call('expire', KEYS[2], ARGV[4]) return 1 end
        local since = redis.call('zscore', KEYS[2], ARGV[1])
        if since and tonumber(since) <= tonumber(ARGV[3]) then
            redis.call('zadd', KEYS[2], ARGV[2], ARGV[1]) return 1 end
        return 0"""

    def _keys(self, branch_id: int) -> tuple[str, str]:
        return self._key(f"unannounced:{branch_id}"), self._key(f"announcing:{branch_id}")

    def note(self, change) -> str | None:
        """In the request, after the commit: a call to announce, noted where every process sees it.
        The note's text, or None when there is nothing to note (or no Redis)."""
        if self.url is None or change is None or change.kind not in ANNOUNCED:
            return None
        note = json.dumps({"kind": change.kind, "ticket": change.ticket_id, "branch": change.branch_id,
                           "label": change.label, "status": change.status, "counter": change.counter_id,
                           "once": uuid.uuid4().hex[:12]})
        try:
            waiting, branches = self._keys(change.branch_id)[0], self._key("unannounced")
            pipe = self.redis().pipeline(transaction=False)
            pipe.zadd(waiting, {note: time.time()})
            pipe.sadd(branches, change.branch_id)
            for key in (waiting, branches):  # a quiet installation keeps nothing in Redis for long
                pipe.expire(key, ANNOUNCE_STALE_SECONDS)
            pipe.execute()
            return note
        except Exception:  # noqa: BLE001  (announced as before, by this process only)
            log.exception("could not note a call for its announcement")
            self.client = None
            return None

    def take(self, branch_id: int, note: str) -> bool:
        """Whether this process announces the noted call (then done() once it has)."""
        now = time.time()
        try:
            return bool(self.redis().eval(self.TAKE, 2, *self._keys(branch_id), note, now,
                                          now - 2 * ANNOUNCE_GRACE_SECONDS, ANNOUNCE_STALE_SECONDS))
        except Exception:  # noqa: BLE001  (Redis away: announce rather than lose it)
            self.client = None
            return True

    def done(self, branch_id: int, notes: list[str]) -> None:
        if notes:
            try:
                self.redis().zrem(self._keys(branch_id)[1], *notes)
            except Exception:  # noqa: BLE001  (announced; at worst announced again later)
                self.client = None

    def orphans(self, branch_id: int) -> list[tuple[TicketChange, str]]:
        """Calls of the branch that nobody announced in time (their maker died or lags, or died while
        announcing), now this process's to announce, oldest first: (change, note); done() after."""
        if self.url is None:
            return []
        waiting, announcing = self._keys(branch_id)
        now = time.time()
        try:
            client = self.redis()
            for key in (waiting, announcing):
                client.zremrangebyscore(key, "-inf", now - ANNOUNCE_STALE_SECONDS)
            late = (client.zrangebyscore(waiting, "-inf", now - ANNOUNCE_GRACE_SECONDS)
                    + client.zrangebyscore(announcing, "-inf", now - 2 * ANNOUNCE_GRACE_SECONDS))
            taken = [note.decode() for note in late if self.take(branch_id, note.decode())]
        except Exception:  # noqa: BLE001
            log.exception("could not sweep the calls left unannounced")
            self.client = None
            return []
        found = []
        for note in taken:
            data = json.loads(note)
            found.append((TicketChange(kind=data["kind"], ticket_id=data["ticket"], branch_id=data["branch"],
                                       label=data["label"], status=data["status"], counter_id=data["counter"]), note))
        if found:
            log.warning("announcing %d call(s) of branch %s that their process did not announce", len(found),
                        branch_id)
        return sorted(found, key=lambda pair: pair[0].ticket_id)

    def sweep(self) -> None:
        """Every SWEEP_SECONDS, in the listener: have the update worker announce the branches'
        overdue calls (even where nothing else happens any more)."""
        try:
            client = self.redis()
            due = time.time() - ANNOUNCE_GRACE_SECONDS
            for raw in client.smembers(self._key("unannounced")):
                waiting, announcing = self._keys(int(raw))
                if client.zcount(waiting, "-inf", due) or client.zcount(announcing, "-inf", due - ANNOUNCE_GRACE_SECONDS):
                    self.updates.orphaned(int(raw))
        except Exception:  # noqa: BLE001  (the next sweep tries again)
            log.exception("could not sweep the calls left unannounced")
            self.client = None


def join_message_queue(app, timeout: float = 5) -> None:
    """For a process that serves screens (a web worker), before it serves: listen to the message
    queue now, not at the first connection (python-socketio starts listening then, and a screen
    whose snapshot was built before the subscription would miss what other processes emit
    meanwhile); and under a host id of its own: the one made when the app was built is every
    gunicorn worker's (they fork from one master), and a manager ignores messages carrying its own
    id, so the workers would ignore each other's emits. Then the notices' listener, which also
    sweeps the calls other processes left unannounced."""
    from .realtime import updates

    server = socketio.server
    manager = getattr(server, "manager", None)
    if not hasattr(manager, "host_id"):
        return  # no message queue: one process
    manager.host_id = uuid.uuid4().hex
    if not server.manager_initialized:
        server.manager_initialized = True
        manager.initialize()

    def subscribed() -> bool:  # (Redis's manager; another kind is not waited for)
        return not hasattr(manager, "pubsub") or (manager.pubsub is not None and manager.pubsub.subscribed)

    deadline = time.monotonic() + timeout
    while not subscribed() and time.monotonic() < deadline:
        socketio.sleep(0.02)
    updates(app).across.listen(timeout)
