"""Texting on /metrics (core/metrics.py runs this part at every scrape): the outbox per lane and
gateway, what each modem last reported, and the inbox's quarantine. Read-only and bounded: the
queued and sending rows through ix_outbox_due (live statuses only), the last hour's texts through
ix_outbox_created, the gateways' own rows (one per modem), and the quarantine, which retention
keeps small (core/privacy.py). The outbox's whole history is never counted: a gateway's total of
texts sent is the counter it keeps in its modem_status row."""
from __future__ import annotations

from datetime import timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from sqlalchemy import func, select

from core import metrics
from core.extensions import db

from . import kinds, outbox_report
from .models import InboxQuarantine, OutboxMessage
from .models import OutboxStatus as O

# The texts counted by status: a scrape comes every 15 s or so, and Prometheus keeps the history; an
# hour is a busy hour's rows, where a day (as /api/v1/health counts) took 50 ms a scrape on SQLite
# at 20,000 texts a day.
WINDOW_MINUTES = 60
# What a modem can be in (ModemStatus.state, hardware/gateway.py), and "silent": its gateway
# stopped reporting (outbox_report.gateways). Each gateway gets a 0 or 1 for every one of them.
MODEM_STATES = ("connecting", "ready", "no_network", "disconnected", "cooling", "pin_rejected", "puk_required",
                "no_sim", "stopped", "silent")


def init_app(app) -> None:
    metrics.add_part(app, "texting", collect)


def collect(now):
    return [*outbox(now), *modems(now), quarantine()]


def outbox(now):
    backlog = outbox_report.backlog(None, now)
    queued = GaugeMetricFamily("seed_texts_queued", "Texts waiting in the outbox to be sent (due now or later), "
                                                    "per lane.", labels=["lane"])
    due = GaugeMetricFamily("seed_texts_due", "Queued texts whose time has come, per lane.", labels=["lane"])
    oldest = GaugeMetricFamily("seed_texts_oldest_due_seconds", "How long the oldest due text of the lane has "
                                                                "waited (0 when none is due).", labels=["lane"])
    for lane in backlog:
        queued.add_metric([lane["lane"]], lane["queued"])
        due.add_metric([lane["lane"]], lane["due"])
        waited = (now - lane["oldest_due_at"]).total_seconds() if lane["oldest_due_at"] else 0
        oldest.add_metric([lane["lane"]], max(0.0, waited))

    sending = GaugeMetricFamily("seed_texts_sending", "Texts a gateway has claimed and is sending now, per lane "
                                                      "and gateway.", labels=["lane", "gateway"])
    in_flight = {}
    for kind, priority, gateway, count in db.session.execute(
            select(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.lease_owner, func.count())
            .where(OutboxMessage.status == O.SENDING)
            .group_by(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.lease_owner)):
        key = (outbox_report.lane_of(kind, priority), gateway or "")
        in_flight[key] = in_flight.get(key, 0) + count
    for (lane, gateway), count in sorted(in_flight.items()):
        sending.add_metric([lane, gateway], count)

    # Every lane and status, 0 included: "failed" has a series before the first failure.
    recent = {(lane, "", status.value): 0 for lane in kinds.LANES for status in O}
    since = now - timedelta(minutes=WINDOW_MINUTES)
    for kind, priority, status, gateway, count in db.session.execute(
            select(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.status, OutboxMessage.sent_by,
                   func.count())
            .where(OutboxMessage.created_at >= since)
            .group_by(OutboxMessage.kind, OutboxMessage.priority, OutboxMessage.status, OutboxMessage.sent_by)):
        key = (outbox_report.lane_of(kind, priority), gateway or "", status)
        recent[key] = recent.get(key, 0) + count
    last_hour = GaugeMetricFamily(
        "seed_texts_last_hour",
        "Texts created in the last hour, per lane, the gateway that sent them (\"\" while none has) and their "
        "status now: queued, sending, sent, delivered, failed, cancelled, suppressed.",
        labels=["lane", "gateway", "status"])
    for (lane, gateway, status), count in sorted(recent.items()):
        last_hour.add_metric([lane, gateway, status], count)
    return [queued, due, oldest, sending, last_hour]


def modems(now):
    """What every gateway last reported (one row each), as /api/v1/health reads it."""
    info = InfoMetricFamily("seed_modem", "A gateway: the branch it serves (\"all\": every branch) and its mobile "
                                          "network.", labels=["gateway", "branch", "network"])
    state = GaugeMetricFamily("seed_modem_state", "1 for the state the gateway's modem is in, 0 for the others; "
                                                  "\"silent\": the gateway stopped reporting.",
                              labels=["gateway", "state"])
    signal = GaugeMetricFamily("seed_modem_signal", "Signal strength the modem last reported, 0-31 (AT+CSQ); no "
                                                    "sample while unknown.", labels=["gateway"])
    failing = GaugeMetricFamily("seed_modem_failed_in_a_row", "Sends that failed one after another.",
                                labels=["gateway"])
    reported = GaugeMetricFamily("seed_modem_last_report_timestamp_seconds", "When the gateway last wrote its "
                                                                             "status (Unix time).", labels=["gateway"])
    sent = CounterMetricFamily("seed_gateway_texts_sent", "Texts the gateway's modem accepted since the gateway "
                                                          "started (it starts again from 0 when the gateway restarts).",
                               labels=["gateway"])
    for modem in outbox_report.gateways(None, now):
        name = modem["gateway"]
        info.add_metric([name, str(modem["branch"] or "all"), modem["network"] or ""], {})
        for known in dict.fromkeys((*MODEM_STATES, modem["state"])):
            state.add_metric([name, known], 1 if known == modem["state"] else 0)
        if modem["signal"] is not None:
            signal.add_metric([name], modem["signal"])
        failing.add_metric([name], modem["failed_in_a_row"] or 0)
        reported.add_metric([name], modem["updated_at"].timestamp())
        sent.add_metric([name], modem["sent_total"] or 0)
    return [info, state, signal, failing, reported, sent]


def quarantine():
    held = db.session.scalar(select(func.count()).select_from(InboxQuarantine))
    family = GaugeMetricFamily("seed_inbox_quarantine", "Received texts that could not be read or stored, kept raw "
                                                        "for staff (deleted after retention).")
    family.add_metric([], held)
    return family

