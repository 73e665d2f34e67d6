"""The scheduler's jobs, and that a survey survives a restart because it is an outbox row."""
from datetime import timedelta

from sqlalchemy import select

from core import engine
from core.clock import ManualClock
from core.extensions import db
from core.models import Ticket
from messaging.models import OutboxMessage
from scheduler import jobs, start, stop

from .conftest import build_app
from .modem_helpers import KA, wait_until


def test_jobs_run_with_fixed_ids_and_stop(app):
    scheduler = start(app)
    try:
        assert sorted(job.id for job in scheduler.get_jobs()) == ["anonymise-old-visits", "appointment-reminders",
                                                                  "dispatch-outbox", "end-of-day",
                                                                  "handle-unhandled-replies", "join-stale-parts",
                                                                  "lost-texts", "nightly-backup"]
    finally:
        stop(app)
    assert "seed.scheduler" not in app.extensions


def test_end_of_day_closes_yesterdays_tickets_and_numbering_restarts(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    waiting = engine.issue_ticket(a.id)
    engine.issue_ticket(a.id)
    engine.call_next(c1.id)
    engine.start_serving(waiting.id)
    held = engine.issue_ticket(a.id)
    engine.hold(held.id)
    assert jobs.end_of_day() == 0  # nothing is left over on the same day
    clock.advance(days=1)
    assert jobs.end_of_day() == 3
    statuses = {t.label: t.status for t in db.session.scalars(select(Ticket))}
    assert statuses == {"A001": "completed", "A002": "cancelled", "A003": "cancelled"}
    assert engine.issue_ticket(a.id).label == "A001"
    assert jobs.end_of_day() == 0  # safe to run again


def test_a_scheduled_survey_survives_a_restart(tmp_path, client, setup, clock, vm, app):
    branch, (a, _b), (c1, _c2), _ = setup
    branch.country = "GE"
    db.session.commit()
    client.post("/api/v1/checkins", json={"service": "A", "phone": "555123456", "sms_consent": True})
    ticket = engine.call_next(c1.id)
    engine.complete(ticket.id)
    survey = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "survey"))
    assert survey.status == "queued" and survey.send_after == clock.now() + timedelta(hours=1)

    # The process stops here. A new one starts later on the same database.
    later = ManualClock(clock.now() + timedelta(hours=2))
    restarted = build_app(app.config["SQLALCHEMY_DATABASE_URI"], later, tmp_path,
                          MODEM_SWEEP_SECONDS=0.5, MODEM_HEALTH_SECONDS=0.5)
    from hardware.gateway import Gateway

    gateway = Gateway(restarted, port=vm.port).start()
    try:
        wait_until(lambda: any("1 (poor)" in m["body"] for m in vm.messages_for(KA)), message="survey after restart")
    finally:
        gateway.stop()
