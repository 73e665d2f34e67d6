"""Texts per second through outbox + gateway + python-gsmmodem + pty + virtual modem.
Prints figures; asserts nothing.

    .venv/bin/python -m bench.gateway [--texts 300] [--latency 3.0] [--latency-texts 10]

1. Zero modem latency: what the software path costs per text.
2. Real-network latency (3 s a text by default): whether the gateway keeps the modem busy,
   as throughput against the ideal 1/latency.
3. Lanes: 200 reminders queued, then "please go to counter 3": how many send slots it waits.
The per-modem rate limit is off (MODEM_RATE_PER_MINUTE=0): these measure the software path.
"""
import argparse
import tempfile
import time

from sqlalchemy import func, select

from app import create_app
from core.database import upgrade_database
from core import clock
from core.extensions import db
from core.models import Customer
from hardware.gateway import Gateway
from hardware.virtual_modem import VirtualModem
from messaging import outbox
from messaging.models import OutboxMessage

NUMBER = "+995555123456"


def bench_app():
    folder = tempfile.mkdtemp()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.db", "SECRET_KEY": "bench",
                      "INSTANCE_PATH": folder, "MODEM_SWEEP_SECONDS": 3600, "MODEM_HEALTH_SECONDS": 3600,
                      "MODEM_RATE_PER_MINUTE": 0})
    upgrade_database(app)
    return app, folder


def run(texts: int, latency: float, body: str):
    app, folder = bench_app()
    with app.app_context(), VirtualModem(f"{folder}/ttyVM0", latency=latency) as modem:
        gateway = Gateway(app, port=modem.port).start()
        while gateway.state != "ready":
            time.sleep(0.01)
        for i in range(texts):
            outbox.enqueue(NUMBER, f"{body} {i}", "test")  # "test": an operator's text, no consent needed
        start = time.perf_counter()
        while len(modem.messages_for(NUMBER)) < texts:
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        gateway.stop()
        db.session.rollback()
        sent = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_not(None)))
        assert sent == texts, f"only {sent} of {texts} rows recorded as sent"
    return elapsed


def lanes(backlog: int, latency: float):
    """Seconds from queuing a "go to counter" text behind `backlog` reminders to its delivery."""
    app, folder = bench_app()
    numbers = [f"+9955551{i:05d}" for i in range(backlog)] + [NUMBER]
    with app.app_context(), VirtualModem(f"{folder}/ttyVM0", latency=latency) as modem:
        for number in numbers:  # reminders and queue texts need consent
            db.session.add(Customer(phone=number, sms_consent=True, consent_at=clock.now(), created_at=clock.now()))
        db.session.commit()
        for number in numbers[:-1]:
            outbox.enqueue(number, "Seed Clinic: a reminder of your appointment tomorrow at 10:00.", "reminder")
        gateway = Gateway(app, port=modem.port).start()
        while sum(len(modem.messages_for(n)) for n in numbers[:3]) < 3:  # the backlog is being worked through
            time.sleep(0.005)
        start = time.perf_counter()
        outbox.enqueue(NUMBER, "Seed Clinic: ticket A012, please go to counter 3.", "called")
        while not modem.messages_for(NUMBER):
            time.sleep(0.005)
        waited = time.perf_counter() - start
        left = backlog - sum(1 for n in numbers[:-1] if modem.messages_for(n))
        gateway.stop()
    return waited, left


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--latency", type=float, default=3.0)
    parser.add_argument("--latency-texts", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=200)
    args = parser.parse_args()

    slot = 0.5
    waited, left = lanes(args.backlog, slot)
    print(f"lanes        : 'go to counter' queued behind {args.backlog} reminders was delivered after {waited:.2f} s "
          f"= {waited / slot:.2f} send slots of {slot} s (the one in flight, then its own); {left} reminders still "
          f"queued then")

    body = "Seed Clinic: ticket A012, 3 people ahead, about 12 minutes. Reply L if you are running late."
    elapsed = run(args.texts, 0.0, body)
    print(f"zero latency : {args.texts} texts in {elapsed:.2f} s = {args.texts / elapsed:.1f} texts/s "
          f"({1000 * elapsed / args.texts:.1f} ms a text)")
    if not args.latency_texts:
        return
    elapsed = run(args.latency_texts, args.latency, body)
    rate, ideal = args.latency_texts / elapsed, 1 / args.latency
    print(f"{args.latency:.1f} s latency: {args.latency_texts} texts in {elapsed:.2f} s = {rate:.4f} texts/s; "
          f"ideal {ideal:.4f}; modem kept busy {100 * rate / ideal:.1f}% of the time")


if __name__ == "__main__":
    main()
