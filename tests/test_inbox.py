"""The staff inbox: conversations, unread counts, replies through the outbox and policy."""
import re

from sqlalchemy import select

from core.extensions import db
from core.models import Customer
from messaging import inbox
from messaging.models import InboxMessage, OutboxMessage

from .helpers import csrf_token, login
from .modem_helpers import KA


def test_conversations_unread_reply_and_done(client, setup, clock):
    branch = setup[0]
    branch.country, branch.sender_name = "GE", "Tbilisi Clinic"
    db.session.add(Customer(phone=KA, name="<b>Nino</b>", sms_consent=True, created_at=clock.now()))
    db.session.commit()
    # the branch's own gateway (a gateway for every branch: see tests/test_isolation.py)
    inbox.store_received(KA, "Can I bring my dog? <script>x</script>", clock.now(), gateway="g", branch_id=branch.id)
    clock.advance(minutes=1)
    inbox.store_received("+819012345678", "HELP", clock.now(), gateway="g", branch_id=branch.id)
    assert client.get("/staff/inbox").status_code == 302  # staff only
    login(client)
    page = client.get("/staff/inbox").text
    assert page.index("+819012345678") < page.index(KA)  # newest first
    assert "1 unread" in page and "&lt;b&gt;Nino&lt;/b&gt;" in page and "<b>Nino</b>" not in page

    thread = client.get(f"/staff/inbox/{KA}").text
    assert "Can I bring my dog? &lt;script&gt;" in thread and "<script>x" not in thread
    assert "unhandled" in thread and "unknown_ack text" in thread  # the router's acknowledgement shows too
    row = re.search(rf'<tr data-number="\{KA}">(.*?)</tr>', client.get("/staff/inbox").text, re.S).group(1)
    assert "unread" not in row and "needs" in row  # read now, still waiting for staff

    response = client.post(f"/staff/inbox/{KA}/reply", data={"body": "Yes, dogs are welcome.",
                                                              "csrf_token": csrf_token(thread)}, follow_redirects=True)
    assert "Reply queued" in response.text
    reply = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    assert reply.body == "Tbilisi Clinic: Yes, dogs are welcome." and reply.to == KA
    too_long = client.post(f"/staff/inbox/{KA}/reply", data={"body": "x" * 601, "csrf_token": csrf_token(thread)},
                           follow_redirects=True)
    assert "1 to 600 characters" in too_long.text

    message = db.session.scalar(select(InboxMessage).where(InboxMessage.sender == KA))
    client.post(f"/staff/inbox/message/{message.id}/done", data={"csrf_token": csrf_token(thread)})
    db.session.rollback()
    assert db.session.get(InboxMessage, message.id).status == "handled"
    assert client.get("/staff/inbox/+10000000000").status_code == 404
