"""Texts per second through outbox + gateway + python-gsmmodem + pty + virtual modem.
Prints figures; asserts nothing.

    .venv/bin/python -m bench.gateway [--texts 300] [--latency 3.0] [--latency-texts 10]

1. Zero modem latency: what the software path costs per text.
2. Real-network latency (3 s a text by default): whether the gateway keeps the modem busy,
   as throughput against the ideal 1/latency.
"""
import argparse
import tempfile
import time

from sqlalchemy import func, select

from core import create_app
from core.database import upgrade_database
from core.extensions import db
from hardware.gateway import Gateway
from hardware.virtual_modem import VirtualModem
from messaging import outbox
from messaging.models import OutboxMessage

NUMBER = "+995555123456"


def run(texts: int, latency: float, body: str):
    folder = tempfile.mkdtemp()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.db", "SECRET_KEY": "bench",
                      "INSTANCE_PATH": folder, "MODEM_SWEEP_SECONDS": 3600, "MODEM_HEALTH_SECONDS": 3600})
    upgrade_database(app)
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--latency", type=float, default=3.0)
    parser.add_argument("--latency-texts", type=int, default=10)
    args = parser.parse_args()

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
