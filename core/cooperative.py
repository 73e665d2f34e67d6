"""Long work in a process that also serves requests and screens lets them go first.

Under gevent (run.py) the scheduler's jobs, the modem gateway and every request and open screen
share one thread: a job that reads or writes thousands of rows holds them all up until it
pauses, and a pause must let the hub poll its sockets, not only run what is already awake."""
from __future__ import annotations

import sys
import time

PAUSE_SECONDS = 0.05


def let_others_run(at_most: float = PAUSE_SECONDS) -> None:
    """Between two steps of long work (a job's pages, a backlog's batches, a fan-out to screens):
    under gevent, wait at most `at_most` seconds until the hub has nothing else to do, its
    sockets polled, so that requests that arrived meanwhile are served first. gevent.sleep(0)
    (time.sleep(0) there) runs only the greenlets already woken: behind a retention run of small
    steps each followed by one, a check-in went unread for 600 ms. Elsewhere (threads: the
    tests, the development server), hand the interpreter over."""
    if _under_gevent():
        import gevent

        with gevent.Timeout(at_most, False):
            gevent.idle()
    else:
        time.sleep(0)


def _under_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")  # (imported by run.py before anything else; never here)
    return monkey is not None and monkey.is_module_patched("time")


def after_response(app, work, *args) -> None:
    """Work a request owes but its answer does not wait for (the texts a call owes the customers
    it brought closer): under gevent, in a greenlet of its own with an app context of its own,
    which the hub runs once the request's greenlet waits, its answer written; elsewhere (threads:
    the tests, the development server; or outside a request: the scheduler's jobs) now. What it
    writes must be what a process lost after the commit leaves to a job to write again (the
    lost-texts job, messaging.notify.unwritten)."""
    from flask import has_request_context

    if not (_under_gevent() and has_request_context()):
        work(*args)
        return
    import gevent

    def run():
        with app.app_context():
            work(*args)

    gevent.spawn(run)
