"""Messaging's domain events (blinker), sent after commit."""
from blinker import Namespace

signals = Namespace()
outbox_queued = signals.signal("outbox-queued")  # kwargs: message_id, branch_id; wakes gateways in this process
sms_received = signals.signal("sms-received")  # kwargs: inbox_id; the reply router listens
