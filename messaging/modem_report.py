"""The gateways serving one branch, for its modem settings page: what each last reported (state,
signal, SIM, operator, last error), what it sent today and what failed today. Read-only; each
count is bounded by today through an index, whatever the history holds."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from core.extensions import db
from core.models import Branch

from . import outbox_report
from .models import OutboxMessage
from .models import OutboxStatus as O

# States in which the SIM stops the gateway (hardware/errors.py SimProblem) until a person acts.
SIM_PROBLEMS = ("pin_needed", "pin_rejected", "puk_required", "no_sim")
# States only reached past the SIM's PIN check: the SIM is fine.
SIM_READY = ("ready", "no_network", "cooling")
# A text that failed today was due at most this long before (its last try is due then, and a
# text waits in the queue minutes, not days): bounds the failed count by ix_outbox_due's send_after.
FAILED_DUE_WITHIN = timedelta(days=1)


def sim_state(reported_state: str) -> str:
    """The SIM's state from the gateway's: one of SIM_PROBLEMS, "ready", or "unknown" (not
    connected: the SIM has not been asked)."""
    if reported_state in SIM_PROBLEMS:
        return reported_state
    return "ready" if reported_state in SIM_READY else "unknown"


def sent_today(gateway: str, branch_id: int, since: datetime) -> int:
    """The branch's texts this gateway handed to the network since the branch's midnight
    (ix_outbox_sent_by: one gateway, a time range)."""
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.sent_by == gateway, OutboxMessage.sent_at >= since, OutboxMessage.branch_id == branch_id))


def failed_today(branch_id: int, since: datetime) -> int:
    """The branch's texts given up on since its midnight, whichever gateway tried them (a refusal
    does not name the gateway): ix_outbox_due, one status, one branch, a range of send_after."""
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == O.FAILED, OutboxMessage.branch_id == branch_id,
        OutboxMessage.send_after >= since - FAILED_DUE_WITHIN, OutboxMessage.failed_at >= since))


def only_branch() -> int | None:
    """The installation's branch while it has just one: a gateway serving every branch follows
    that branch's modem settings (hardware/gateway.py)."""
    found = db.session.scalars(select(Branch.id).order_by(Branch.id).limit(2)).all()
    return found[0] if len(found) == 1 else None


def for_branch(branch: Branch, now: datetime) -> dict:
    """Every gateway serving the branch (its own, and any serving every branch) with its counts
    of today, and the branch's failed texts of today."""
    since = outbox_report.day_start(branch, now)
    alone = only_branch() == branch.id
    gateways = []
    for modem in outbox_report.gateways(branch.id, now):
        gateways.append({
            **modem, "sim": sim_state(modem["reported_state"]),
            "sent_today": sent_today(modem["gateway"], branch.id, since),
            "follows_settings": modem["branch"] == branch.id or (modem["branch"] is None and alone),
        })
    return {"gateways": gateways, "failed_today": failed_today(branch.id, since), "since": since}
