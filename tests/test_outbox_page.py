"""The outbox page, its JSON twin and the console's modem line: who sees which texts, filters,
retry and cancel, the backlog per lane with its drain estimate, quarantine, languages."""
import re
from datetime import timedelta

import pytest

from core.extensions import db
from core.models import Appointment
from messaging.models import InboxQuarantine, ModemStatus, OutboxMessage

from .conftest import RequestIsolatedClient
from .helpers import csrf_token, login, make_branch, make_branch_setup, make_service, make_staff, text

NUMBER = "+995555123456"


@pytest.fixture
def two_branches(setup, clock):
    """Branch 1 (alice, in Tokyo) and branch 2 (bob); an admin for both."""
    branch, _, _, _ = setup
    branch.timezone = "Asia/Tokyo"
    other = make_branch("Second Branch")
    make_service(other, "A")
    make_staff("bob", branch=other)
    make_staff("root", role="admin", branch=branch)
    db.session.commit()
    return branch, other


def status_of(ident) -> str:
    db.session.expire_all()
    return db.session.get(OutboxMessage, ident).status


def post_button(client, ident, action, **args):
    token = csrf_token(client.get("/staff/outbox").text)
    query = "".join(f"&{k}={v}" for k, v in args.items()).lstrip("&")
    return client.post(f"/staff/outbox/{ident}/{action}" + (f"?{query}" if query else ""),
                       data={"csrf_token": token}, follow_redirects=True)


def test_page_and_api_need_a_login(client, setup):
    response = client.get("/staff/outbox")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert client.get("/api/v1/outbox").status_code == 401


def test_staff_see_their_branch_only_with_everything_about_each_text(client, two_branches, clock):
    branch, other = two_branches
    ticket_row = text(branch, "called", status="failed", now=clock.now(), attempts=8, possible_duplicate=True,
                      last_error="+CMS ERROR: 500", body="Please go to counter 3")
    appointment = Appointment(branch_id=branch.id, service_id=branch.services[0].id, starts_at=clock.now(),
                              booking_code="K7M2QX", created_at=clock.now())
    db.session.add(appointment)
    db.session.commit()
    text(branch, "reminder", status="suppressed", now=clock.now(), appointment_id=appointment.id,
         policy_note="quiet hours", body="Reminder for tomorrow")
    text(other, "welcome", now=clock.now(), body="Second branch secret")
    login(client)
    page = client.get("/staff/outbox").text
    assert "Please go to counter 3" in page and "Reminder for tomorrow" in page
    assert "Second branch secret" not in page
    assert NUMBER not in page and "+99555****456" in page  # masked
    row = re.search(rf'<tr data-id="{ticket_row.id}".*?</tr>', page, re.S).group(0)
    assert "+CMS ERROR: 500" in row and "possible duplicate" in row and ">8<" in row
    assert "Calls to the counter" in row and "failed" in row
    assert "2026-03-02 18:00" in row  # 09:00 UTC is 18:00 in Tokyo
    assert "booking K7M2QX" in page and "quiet hours" in page
    assert 'id="nav-outbox"' in page


def test_ticket_label_is_shown(client, setup, clock):
    from core import engine

    branch, (a, _b), _, _ = setup
    ticket = engine.issue_ticket(a.id)
    text(branch, "welcome", now=clock.now(), ticket_id=ticket.id)
    login(client)
    assert f"ticket {ticket.label}" in client.get("/staff/outbox").text


def test_admins_see_every_branch_and_can_filter_one(client, two_branches, clock):
    branch, other = two_branches
    text(branch, now=clock.now(), body="first branch text")
    text(other, now=clock.now(), body="second branch text")
    login(client, "root")
    page = client.get("/staff/outbox").text
    assert "first branch text" in page and "second branch text" in page and "All branches" in page
    page = client.get(f"/staff/outbox?branch={other.id}").text
    assert "second branch text" in page and "first branch text" not in page
    assert client.get("/staff/outbox?branch=999").status_code == 404
    assert len(client.get("/api/v1/outbox").json["messages"]) == 2
    assert [m["body"] for m in client.get(f"/api/v1/outbox?branch={branch.id}").json["messages"]] == ["first branch text"]


def test_staff_of_another_branch_get_404_and_nothing_changes(client, two_branches, clock):
    branch, other = two_branches
    failed = text(branch, status="failed", now=clock.now()).id
    queued = text(branch, now=clock.now()).id
    login(client, "bob")
    assert client.get(f"/staff/outbox?branch={branch.id}").status_code == 404
    assert client.get(f"/api/v1/outbox?branch={branch.id}").status_code == 404
    assert post_button(client, failed, "retry").status_code == 404
    assert post_button(client, queued, "cancel").status_code == 404
    assert post_button(client, 9999, "cancel").status_code == 404
    assert (status_of(failed), status_of(queued)) == ("failed", "queued")


def test_filters_status_lane_and_branch_local_today(client, two_branches, clock):
    branch, _ = two_branches
    now = clock.now()  # Monday 18:00 in Tokyo
    text(branch, "called", status="failed", now=now, body="failed call")
    text(branch, "reminder", now=now, body="queued reminder")
    # Sunday 23:00 UTC is already Monday 08:00 in Tokyo: today there; 14:00 UTC is Sunday 23:00 there.
    text(branch, "survey", status="delivered", now=now - timedelta(hours=10), body="early this morning")
    text(branch, "survey", status="delivered", now=now - timedelta(hours=19), body="last night")
    login(client)

    def shown(query):
        page = client.get(f"/staff/outbox?{query}").text
        return {body for body in ("failed call", "queued reminder", "early this morning", "last night") if body in page}

    assert shown("status=failed") == {"failed call"}
    assert shown("lane=reminder") == {"queued reminder"}
    assert shown("lane=bulk&today=1") == {"early this morning"}
    assert shown("today=1") == {"failed call", "queued reminder", "early this morning"}
    assert client.get("/staff/outbox?status=lost").status_code == 400
    assert client.get("/staff/outbox?lane=express").status_code == 400


def test_retry_and_cancel_change_the_status_and_refusals_say_why(client, setup, clock):
    branch = setup[0]
    failed = text(branch, status="failed", now=clock.now(), attempts=8).id
    queued = text(branch, now=clock.now()).id
    sent = text(branch, status="sent", now=clock.now()).id
    login(client)
    page = post_button(client, failed, "retry", status="failed")
    assert f"Text {failed} is queued again" in page.text
    assert status_of(failed) == "queued" and db.session.get(OutboxMessage, failed).attempts == 0

    page = post_button(client, queued, "cancel")
    assert f"Text {queued} is cancelled." in page.text
    assert status_of(queued) == "cancelled"
    assert db.session.get(OutboxMessage, queued).policy_note == "cancelled by alice"

    page = post_button(client, sent, "cancel")
    assert "is sent: only a text still waiting to send, or a failed one, can be cancelled" in page.text
    page = post_button(client, sent, "retry")
    assert "only a failed or cancelled text can be sent again" in page.text
    assert status_of(sent) == "sent"

    no_token = client.post(f"/staff/outbox/{failed}/cancel")
    assert no_token.status_code == 400 and status_of(failed) == "queued"


def test_buttons_come_back_to_the_same_filters(client, setup, clock):
    failed = text(setup[0], status="failed", now=clock.now()).id
    login(client)
    page = client.get("/staff/outbox?status=failed").text
    assert f'action="/staff/outbox/{failed}/retry?status=failed"' in page
    token = csrf_token(page)
    response = client.post(f"/staff/outbox/{failed}/retry?status=failed", data={"csrf_token": token})
    assert response.headers["Location"].endswith("/staff/outbox?status=failed")


def test_backlog_per_lane_and_drain_estimate(client, setup, clock):
    branch = setup[0]
    now = clock.now()
    for minutes in (5, 1, 0):  # three calls due, the oldest for 5 min: over the 2 min a call may wait
        text(branch, "called", now=now - timedelta(minutes=minutes))
    text(branch, "reminder", now=now, send_after=now + timedelta(hours=3))  # queued, not due yet
    login(client)
    page = client.get("/staff/outbox").text
    call = re.search(r'<tr data-lane="call".*?</tr>', page, re.S).group(0)
    assert 'class="over"' in call and 'class="queued">3<' in call and 'class="due">3<' in call
    assert "5 min" in call and "over the limit" in call
    reminder = re.search(r'<tr data-lane="reminder".*?</tr>', page, re.S).group(0)
    assert 'class="queued">1<' in reminder and 'class="due">0<' in reminder and "over the limit" not in reminder
    assert "rate not measured yet" in page

    for minutes in range(30):  # 30 texts sent in the last hour: 0.5 a minute
        text(branch, "welcome", status="delivered", now=now - timedelta(minutes=minutes + 1),
             sent_at=now - timedelta(minutes=minutes), sent_by="g1")
    text(branch, "welcome", status="delivered", now=now - timedelta(hours=3),
         sent_at=now - timedelta(minutes=61), sent_by="g1")  # outside the hour
    page = client.get("/staff/outbox").text
    assert "Texts due now: 3. Time to send them: about 6 min at 0.5 texts a minute" in page
    data = client.get("/api/v1/outbox").json
    assert data["drain"] == {"due": 3, "rate_per_minute": 0.5, "minutes": 6}
    assert data["backlog"][0] == dict(data["backlog"][0], lane="call", queued=3, due=3, oldest_wait_minutes=5, over=True)


def test_quarantined_texts_listed_for_their_branch(client, two_branches, clock):
    branch, other = two_branches
    for where, error in ((branch, "cannot decode PDU"), (other, "second branch problem")):
        db.session.add(InboxQuarantine(branch_id=where.id, gateway="g1", memory="SM", sender=NUMBER,
                                       pdu="07911326040000F0040B911346610089F60000", error=error,
                                       received_at=clock.now()))
    db.session.commit()
    login(client)
    section = re.search(r'<section class="card" id="quarantine">.*?</section>', client.get("/staff/outbox").text, re.S)
    assert "cannot decode PDU" in section.group(0) and "07911326040000F0" in section.group(0)
    assert "second branch problem" not in section.group(0) and NUMBER not in section.group(0)


def test_pages_are_bounded_and_link_older_and_newer(client, setup, clock):
    branch = setup[0]
    idents = [text(branch, now=clock.now(), body=f"text number {i:03d}").id for i in range(60)]
    login(client)
    first = client.get("/staff/outbox").text
    assert first.count("<tr data-id=") == 50 and "text number 059" in first and "text number 009" not in first
    pages = lambda html: re.search(r'<nav class="bar" id="pages">.*?</nav>', html, re.S).group(0)  # noqa: E731
    assert "after=" not in pages(first)
    older = re.search(r'href="([^"]*before=\d+[^"]*)"', pages(first)).group(1).replace("&amp;", "&")
    second = client.get(older).text
    assert second.count("<tr data-id=") == 10 and "text number 000" in second
    assert f"after={idents[9]}" in pages(second) and "before=" not in pages(second)
    newer = client.get(f"/staff/outbox?after={idents[9]}").text
    assert newer.count("<tr data-id=") == 50 and "text number 059" in newer
    page = client.get("/api/v1/outbox?limit=5").json
    assert [m["id"] for m in page["messages"]] == idents[:-6:-1] and page["older"] == idents[-5]
    assert client.get("/api/v1/outbox?limit=500").status_code == 400


@pytest.mark.parametrize(("how", "words"), [
    ({"query_string": {"lang": "ja"}}, ["送信待ち", "<html lang=\"ja\">", "呼び出し"]),
    ({"headers": {"Accept-Language": "ka,en;q=0.5"}}, ["გაგზავნის მოლოდინში", "<html lang=\"ka\">"]),
])
def test_page_speaks_japanese_and_georgian(client, setup, clock, how, words):
    branch = setup[0]
    text(branch, "called", now=clock.now() - timedelta(minutes=5))
    db.session.add(InboxQuarantine(branch_id=branch.id, pdu="00", error="bad", received_at=clock.now()))
    db.session.commit()
    login(client)
    page = client.get("/staff/outbox", **how)
    assert page.status_code == 200
    for word in words:
        assert word in page.text
    assert "Waiting to send, by lane" not in page.text and "rate not measured yet" not in page.text


def test_api_lists_the_same_rows_with_the_same_scope(client, two_branches, clock):
    branch, other = two_branches
    mine = text(branch, "called", status="failed", now=clock.now(), last_error="no network").id
    text(other, now=clock.now())
    login(client)
    data = client.get("/api/v1/outbox?status=failed").json
    assert data["branch"] == branch.id and [m["id"] for m in data["messages"]] == [mine]
    message = data["messages"][0]
    assert (message["lane"], message["to"], message["last_error"], message["actions"]) == (
        "call", "+99555****456", "no network", ["retry", "cancel"])
    assert message["created_at"] == "2026-03-02T18:00:00+09:00"
    assert data["status"] == "ok" and data["reasons"] == [] and data["drain"]["rate_per_minute"] is None
    clock.advance(minutes=10)
    text(branch, "called", now=clock.now() - timedelta(minutes=3))
    late = client.get("/api/v1/outbox").json
    assert late["status"] == "degraded" and late["reasons"][0]["message"].startswith("No modem gateway is running")
    assert client.get("/api/v1/outbox?lane=nope").status_code == 400


def test_console_panel_says_the_modem_state_in_words_and_links_the_outbox(client, setup, clock):
    branch, _, (c1, _c2), _ = setup
    branch.timezone = "Asia/Tokyo"
    now = clock.now()
    db.session.add_all([
        ModemStatus(gateway="g1", port="/dev/ttyUSB0", state="pin_rejected", state_since=now, updated_at=now),
        ModemStatus(gateway="g2", port="/dev/ttyUSB1", state="cooling", state_since=now, updated_at=now,
                    cooling_until=now + timedelta(minutes=5), failed_in_a_row=3),
        ModemStatus(gateway="elsewhere", branch_id=make_branch("Other").id, port="/dev/ttyUSB2", state="no_sim",
                    updated_at=now),
    ])
    db.session.commit()
    login(client)
    client.post("/staff/counter", data={"counter_id": c1.id, "csrf_token": csrf_token(client.get("/staff/counter").text)})
    panel = client.get("/staff/panel").text
    assert "Modem: PIN rejected — fix MODEM_PIN" in panel and "Modem: cooling down until 18:05" in panel
    assert "no SIM" not in panel  # another branch's gateway
    assert 'id="outbox-link"' in panel and "Texting is degraded:" in panel
    assert "Modem g2: sending failed repeatedly; cooling down until 18:05." in panel
    panel = client.get("/staff/panel", query_string={"lang": "ka"}).text
    assert "PIN უარყოფილია — შეასწორეთ MODEM_PIN" in panel and ">გასაგზავნი<" in panel


def test_page_works_on_sqlite_and_postgresql(any_db_app, clock):
    any_db_app.test_client_class = RequestIsolatedClient
    client = any_db_app.test_client()
    branch, _, _, _ = make_branch_setup()
    other = make_branch("Second Branch")
    now = clock.now()
    failed = text(branch, "called", status="failed", now=now - timedelta(minutes=5), body="mine").id
    text(branch, "reminder", now=now - timedelta(minutes=90), body="late reminder")
    text(other, now=now, body="theirs")
    for minutes in range(30):
        text(branch, "welcome", status="sent", now=now - timedelta(minutes=minutes), sent_at=now, sent_by="g1")
    login(client)
    page = client.get("/staff/outbox?today=1").text
    assert "mine" in page and "theirs" not in page
    assert "Texts due now: 1. Time to send them: about 2 min at 0.5 texts a minute" in page
    assert 'class="over"' in re.search(r'<tr data-lane="reminder".*?</tr>', page, re.S).group(0)
    assert post_button(client, failed, "retry").status_code == 200 and status_of(failed) == "queued"
    assert [m["body"] for m in client.get("/api/v1/outbox?lane=reminder").json["messages"]] == ["late reminder"]


def test_every_branch_paged_by_status_and_lane_as_one_list(any_db_app, clock):
    """An administrator's texts of one status or lane over every branch (each branch's page merged,
    messaging.outbox_report._every_branch): paged older, then newer again, in small pages, they are
    exactly every such text of every branch and of none, newest first, each once."""
    any_db_app.test_client_class = RequestIsolatedClient
    client = any_db_app.test_client()
    branch, _, _, _ = make_branch_setup()
    other = make_branch("Second Branch")
    make_staff("root", role="admin", branch=branch)
    db.session.commit()
    now = clock.now()
    places = (branch, other, None, other, branch, branch, None, other)
    written = [text(places[n % len(places)], ("called", "reminder", "welcome")[n % 3],
                    status=("failed", "sent", "failed", "queued")[n % 4], now=now - timedelta(minutes=40 - n))
               for n in range(40)]
    login(client, "root")

    def paged(query: str) -> list[int]:
        seen, pages, where = [], [], ""
        while True:
            answer = client.get(f"/api/v1/outbox?{query}&limit=3{where}").json
            pages.append([message["id"] for message in answer["messages"]])
            seen += pages[-1]
            assert answer["newer"] == (pages[-1][0] if len(pages) > 1 else None)  # the way back
            if answer["older"] is None:
                break
            where = f"&before={answer['older']}"
        assert all(len(page) == 3 for page in pages[:-1])
        # and back, newer from the oldest page: the same pages, each in its place
        back, newer = [], pages[-1][0]
        for _ in pages[:-1]:
            answer = client.get(f"/api/v1/outbox?{query}&limit=3&after={newer}").json
            back.insert(0, [message["id"] for message in answer["messages"]])
            assert answer["older"] == back[0][-1]  # older ones than this page: always, here
            newer = answer["newer"]
            assert (newer is None) == (len(back) == len(pages) - 1)
        assert back == pages[:-1]
        return seen

    for query, wanted in (("status=failed", lambda m: m.status == "failed"),
                          ("lane=call", lambda m: m.kind == "called"),
                          ("status=queued", lambda m: m.status == "queued")):
        expected = sorted((m.id for m in written if wanted(m)), reverse=True)
        assert paged(query) == expected, query
    assert client.get("/api/v1/outbox?status=sent&limit=3").json["messages"][0]["branch_id"] in (branch.id, other.id, None)
