"""Personal data: finished visits lose numbers, names and words after RETENTION_DAYS and keep
their figures; one person's data is exported or erased on request, within the requester's
branches, and both are in the audit log."""
import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text as sql

from core import cooperative, customers, engine, privacy
from core.audit import AuditEntry
from core.extensions import db
from core.models import Appointment, Customer, Ticket
from messaging.models import (InboxMessage, InboxPart, InboxQuarantine, OutboxMessage, RescheduleOffer,
                              SurveyResponse)
from scheduler import jobs

from .helpers import NUMBER, login, make_branch, make_branch_setup, make_counter, make_service, make_staff, text
from .test_query_plans import Capture

NINO = NUMBER  # +995555123456
OTAR = "+995555999888"


@pytest.fixture
def people(app, setup):
    """Branch 1 (alice, staff; mona, its manager), branch 2 (max, its manager), root an admin."""
    two = make_branch("Other Branch")
    service = make_service(two, "A")
    make_counter(two, "1", [service])
    make_staff("mona", role="manager", branch=setup[0])
    make_staff("max", role="manager", branch=two)
    make_staff("root", role="admin")
    db.session.commit()
    return {"one": setup[0], "two": two, "a1": setup[1][0], "a2": service}


def person(phone, name) -> int:
    return customers.remember(phone, name=name, consent_source="kiosk", consent_text="Texts about my visit: yes")


def visit(branch, service, customer_id, phone, words, clock):
    """A finished visit with everything that comes with one: texts both ways, a survey, an
    appointment, an offer of other times, parts of a long text, an unreadable text."""
    now = clock.now()
    ticket = engine.issue_ticket(service.id, customer_id=customer_id)
    engine.cancel(ticket.id)
    text(branch, "welcome", "delivered", to=phone, now=now, sent_at=now, body=f"{words} out")
    appointment = Appointment(branch_id=branch.id, service_id=service.id, customer_id=customer_id, created_at=now,
                              starts_at=now - timedelta(hours=1), status="checked_in", ticket_id=ticket.id)
    db.session.add(appointment)
    db.session.flush()
    db.session.add_all([
        InboxMessage(branch_id=branch.id, sender=phone, body=f"{words} in", received_at=now, status="handled",
                     dedupe_key=uuid.uuid4().hex),
        InboxPart(branch_id=branch.id, sender=phone, reference=1, total=2, sequence=1, body=f"{words} part",
                  received_at=now, dedupe_key=uuid.uuid4().hex),
        InboxQuarantine(branch_id=branch.id, sender=phone, pdu=f"{words} raw", error="unreadable", received_at=now),
        SurveyResponse(branch_id=branch.id, ticket_id=ticket.id, phone=phone, score=2, comment=f"{words} comment",
                       state="done", created_at=now, answered_at=now),
        RescheduleOffer(appointment_id=appointment.id, phone=phone, slots=[], status="used", created_at=now,
                        expires_at=now),
    ])
    db.session.commit()
    return ticket


def everything() -> str:
    """Every row that can hold personal data, and the audit log."""
    db.session.rollback()
    tables = [holder.table for holder in privacy.HOLDERS] + ["customer", "audit_entry"]
    return repr([db.session.execute(select(db.metadata.tables[name])).all() for name in tables])


def figures() -> dict:
    def tally(*columns):
        return sorted(db.session.execute(select(*columns, func.count()).group_by(*columns)).all())

    return {"tickets": tally(Ticket.branch_id, Ticket.status), "texts": tally(OutboxMessage.kind),
            "sent": tally(OutboxMessage.sent_at.is_not(None)),
            "replies": tally(InboxMessage.status), "scores": tally(SurveyResponse.score),
            "appointments": tally(Appointment.status), "customers": tally(Customer.sms_consent)}


def enter(client, username):
    """Log in, then post forms without their CSRF tokens (tested elsewhere)."""
    client.application.config["WTF_CSRF_ENABLED"] = True
    login(client, username)
    client.application.config["WTF_CSRF_ENABLED"] = False


def entries(action):
    db.session.rollback()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


# --- the retention job -------------------------------------------------------------------------

def test_old_visits_lose_numbers_names_and_words_but_keep_their_figures(people, clock):
    nino, otar = person(NINO, "Nino Secretova"), person(OTAR, "Otar Kept")
    visit(people["one"], people["a1"], nino, NINO, "NINO-OLD", clock)
    visit(people["one"], people["a1"], otar, OTAR, "OTAR-OLD", clock)
    clock.advance(days=89)
    assert privacy.anonymise() == {}  # not yet
    clock.advance(days=2)
    visit(people["one"], people["a1"], otar, OTAR, "OTAR-NEW", clock)  # Otar came back lately
    before = figures()

    done = privacy.anonymise()
    assert {key: done[key] for key in ("tickets", "appointments", "texts_received", "surveys", "customers")} == {
        "tickets": 2, "appointments": 2, "texts_received": 2, "surveys": 2, "customers": 1}
    assert done["texts_sent"] == 4  # each visit's welcome (never sent: it ends cancelled) and its "out" text
    left = everything()
    assert "5123456" not in left and "Nino" not in left and "NINO-OLD" not in left and "OTAR-OLD" not in left
    assert OTAR in left and "Otar Kept" in left and "OTAR-NEW" in left  # the recent visit is untouched
    assert figures() == before  # counts, statuses, kinds and scores stay
    nino_row = db.session.get(Customer, nino)
    assert (nino_row.phone, nino_row.name) == (None, None)
    assert (nino_row.sms_consent, nino_row.consent_source, nino_row.consent_text) == (
        True, "kiosk", "Texts about my visit: yes")  # what the law asks to keep
    assert db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.to.is_(None))) == privacy.REMOVED
    assert privacy.anonymise() == {}  # done: the next run finds nothing


def test_open_tickets_wait_for_their_end_and_texts_queued_for_months_end(people, clock):
    nino = person(NINO, "Nino")
    waiting = engine.issue_ticket(people["a1"].id, customer_id=nino)
    queued = text(people["one"], "survey", "queued", to=NINO, now=clock.now())
    sending = text(people["one"], "survey", "sending", to=NINO, now=clock.now())
    clock.advance(days=120)
    privacy.anonymise()
    db.session.rollback()
    assert db.session.get(Ticket, waiting.id).customer_id == nino
    assert db.session.get(Customer, nino).phone == NINO
    old = db.session.get(OutboxMessage, queued.id)
    assert (old.status, old.to, old.body) == ("cancelled", None, privacy.REMOVED)  # no gateway will pick it up
    assert db.session.get(OutboxMessage, sending.id).to == NINO  # a gateway holds it: the next run


def test_each_run_is_bounded_and_a_backlog_drains(people, clock, app):
    for number in range(5):
        text(people["one"], "welcome", "delivered", to=NINO, now=clock.now(), body=f"old {number}")
    clock.advance(days=91)
    app.config["RETENTION_BATCH"] = 2
    assert [privacy.anonymise().get("texts_sent") for _ in range(4)] == [2, 2, 1, None]


def test_the_job_finds_its_rows_through_an_index_of_what_still_names_someone(app, clock):
    for holder in privacy.HOLDERS:
        query = privacy.candidates(holder, clock.now(), 1000)
        statement = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in db.session.execute(sql("EXPLAIN QUERY PLAN " + statement)))
        index = f"ix_{holder.table}_received" if holder.delete else f"ix_{holder.table}_identified"
        assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, (holder.table, plan)


def test_the_scheduled_job_records_its_work_once(people, clock):
    visit(people["one"], people["a1"], person(NINO, "Nino"), NINO, "OLD", clock)
    clock.advance(days=91)
    done = jobs.anonymise_old_visits()
    assert jobs.anonymise_old_visits() == 0
    (entry,) = entries("data.anonymised")
    assert (entry.actor, entry.branch_id) == ("system", None) and entry.detail["customers"] == 1
    assert sum(entry.detail.values()) == done


# --- export ------------------------------------------------------------------------------------

def test_a_manager_exports_what_their_branches_hold_about_one_number(client, people, clock):
    nino = person(NINO, "Nino Secretova")
    visit(people["one"], people["a1"], nino, NINO, "NINO-ONE", clock)
    visit(people["two"], people["a2"], nino, NINO, "NINO-TWO", clock)
    visit(people["one"], people["a1"], person(OTAR, "Otar"), OTAR, "OTAR", clock)
    enter(client, "mona")
    response = client.post("/staff/privacy/export", data={"phone": NINO})
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    found = json.loads(response.data)
    assert found["phone"] == NINO and found["customer"]["name"] == "Nino Secretova"
    assert found["customer"]["consent_text"] == "Texts about my visit: yes"
    assert [t["branch_id"] for t in found["tickets"]] == [people["one"].id]
    assert "NINO-ONE out" in [m["body"] for m in found["texts_sent"]]
    assert {row["branch_id"] for rows in found.values() if isinstance(rows, list) for row in rows
            if "branch_id" in row} == {people["one"].id}
    assert [m["body"] for m in found["texts_received"]] == ["NINO-ONE in"]
    assert [s["comment"] for s in found["surveys"]] == ["NINO-ONE comment"] and len(found["appointments"]) == 1
    assert len(found["reschedule_offers"]) == 1 and [q["pdu"] for q in found["unreadable_texts"]] == ["NINO-ONE raw"]
    assert "NINO-TWO" not in response.text and "OTAR" not in response.text and OTAR not in response.text
    (entry,) = entries("data.exported")
    assert (entry.actor, entry.role, entry.branch_id, entry.target) == ("mona", "manager", people["one"].id,
                                                                      "phone:+99555****456")
    assert entry.detail["tickets"] == 1

    client.post("/staff/logout")
    enter(client, "root")
    everywhere = json.loads(client.post("/staff/privacy/export", data={"phone": NINO}).data)
    assert sorted(t["branch_id"] for t in everywhere["tickets"]) == [people["one"].id, people["two"].id]
    assert entries("data.exported")[-1].branch_id is None  # an administrator's: filed under no branch


def test_another_branch_can_neither_export_nor_erase_nor_learn_that_anything_exists(client, people, clock):
    visit(people["one"], people["a1"], person(NINO, "Nino"), NINO, "NINO", clock)
    before = everything()
    enter(client, "max")
    for path in ("/staff/privacy/export", "/staff/privacy/erase"):
        for form in ({"phone": NINO}, {"phone": NINO, "confirm": "erase"}):
            response = client.post(path, data=form)
            assert response.status_code == 404 and "NINO" not in response.text and "Nino" not in response.text
    client.post("/staff/logout")
    enter(client, "alice")  # staff, not a manager
    assert client.post("/staff/privacy/export", data={"phone": NINO}).status_code == 403
    assert client.get("/staff/privacy").status_code == 403
    assert everything() == before and entries("data.exported") == entries("data.erased") == []


def test_a_number_that_is_not_one_is_refused_clearly(client, people):
    enter(client, "mona")
    response = client.post("/staff/privacy/export", data={"phone": "call me"})
    assert response.status_code == 400 and "country code" in response.text


# --- erasure -----------------------------------------------------------------------------------

def test_erasure_asks_first_then_removes_the_number_everywhere_and_cancels_what_is_queued(client, people, clock):
    nino = person(NINO, "Nino Secretova")
    visit(people["one"], people["a1"], nino, NINO, "NINO-ONE", clock)
    visit(people["two"], people["a2"], nino, NINO, "NINO-TWO", clock)
    visit(people["one"], people["a1"], person(OTAR, "Otar"), OTAR, "OTAR-STAYS", clock)
    queued = text(people["one"], "reminder", "queued", to=NINO, now=clock.now())
    booked = Appointment(branch_id=people["one"].id, service_id=people["a1"].id, customer_id=nino, status="booked",
                         starts_at=clock.now() + timedelta(days=3), created_at=clock.now())
    db.session.add(booked)
    db.session.flush()
    db.session.add(RescheduleOffer(appointment_id=booked.id, phone=NINO, slots=[], status="open",
                                   created_at=clock.now(), expires_at=clock.now() + timedelta(minutes=30)))
    unread = InboxMessage(branch_id=people["one"].id, sender=NINO, body="NINO just wrote", received_at=clock.now(),
                          dedupe_key="unread")  # not yet read by the reply router
    db.session.add(unread)
    db.session.commit()
    enter(client, "root")
    texts_to_nino = db.session.scalar(select(func.count()).where(OutboxMessage.to == NINO))
    before = everything()
    asked = client.post("/staff/privacy/erase", data={"phone": NINO})
    assert asked.status_code == 200 and "+99555****456" in asked.text and 'value="erase"' in asked.text
    assert everything() == before  # nothing is gone before the confirmation

    done = client.post("/staff/privacy/erase", data={"phone": NINO, "confirm": "erase"})
    assert done.status_code == 302
    left = everything()
    assert "5123456" not in left and "Nino" not in left and "NINO" not in left
    assert "OTAR-STAYS" in left and OTAR in left and "Otar" in left
    assert db.session.get(OutboxMessage, queued.id).status == "cancelled"
    assert (db.session.get(Appointment, booked.id).status, db.session.get(Appointment, booked.id).customer_id) == (
        "cancelled", None)
    offer = select(RescheduleOffer.status).where(RescheduleOffer.appointment_id == booked.id)
    assert db.session.scalar(offer) == "expired"
    assert db.session.get(InboxMessage, unread.id).status == "handled"  # the router leaves it alone
    customer = db.session.get(Customer, nino)
    assert (customer.phone, customer.name, customer.consent_text) == (None, None, "Texts about my visit: yes")
    (entry,) = entries("data.erased")
    assert (entry.actor, entry.target, entry.branch_id) == ("root", "phone:+99555****456", None)
    assert entry.detail["texts_sent"] == texts_to_nino and entry.detail["customer"] == 1
    assert client.post("/staff/privacy/export", data={"phone": NINO}).status_code == 404  # nothing is left


def test_a_manager_erases_within_their_branches_and_the_rest_stays(client, people, clock):
    nino = person(NINO, "Nino")
    visit(people["one"], people["a1"], nino, NINO, "NINO-ONE", clock)
    visit(people["two"], people["a2"], nino, NINO, "NINO-TWO", clock)
    enter(client, "mona")
    client.post("/staff/privacy/erase", data={"phone": NINO, "confirm": "erase"})
    left = everything()
    assert "NINO-ONE" not in left and "NINO-TWO" in left
    assert db.session.get(Customer, nino).phone == NINO  # branch 2 still serves this number
    assert entries("data.erased")[0].branch_id == people["one"].id


def test_the_command_line_exports_and_erases(runner, people, clock):
    visit(people["one"], people["a1"], person(NINO, "Nino"), NINO, "NINO", clock)
    exported = runner.invoke(args=["privacy", "export", NINO])
    assert exported.exit_code == 0 and json.loads(exported.output)["customer"]["name"] == "Nino"
    kept = runner.invoke(args=["privacy", "erase", NINO], input="n\n")
    assert kept.exit_code != 0 and "Nino" in everything()
    erased = runner.invoke(args=["privacy", "erase", NINO, "--yes"])
    assert erased.exit_code == 0 and "Erased:" in erased.output and "5123456" not in everything()
    assert [(e.action, e.actor) for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))] == [
        ("data.exported", "cli"), ("data.erased", "cli")]
    refused = runner.invoke(args=["privacy", "export", "555 12 34"])
    assert refused.exit_code != 0 and "international form" in refused.output


def test_export_erase_and_anonymise_on_both_databases(any_db_app, clock):
    branch, (service, _b), _counters, _alice = make_branch_setup()
    root = make_staff("root", role="admin")
    manager = make_staff("mona", role="manager", branch=branch)
    db.session.commit()
    visit(branch, service, person(NINO, "Nino"), NINO, "NINO", clock)
    visit(branch, service, person(OTAR, "Otar"), OTAR, "OTAR", clock)
    assert "NINO out" in [m["body"] for m in privacy.export(NINO, root)["texts_sent"]]
    assert privacy.erase(NINO, manager)["reschedule_offers"] == 1  # the offer's branch is its appointment's
    clock.advance(days=91)
    assert privacy.anonymise()["customers"] == 1
    assert "OTAR" not in everything() and "5123456" not in everything()


def test_anonymised_texts_are_no_conversation_in_the_inbox(client, people, clock):
    visit(people["one"], people["a1"], person(NINO, "Nino"), NINO, "OLD", clock)
    clock.advance(days=91)
    privacy.anonymise()
    enter(client, "alice")
    page = client.get("/staff/inbox")
    assert page.status_code == 200 and "/staff/inbox/None" not in page.text


def test_a_run_writes_in_steps_and_looks_through_customers_a_stretch_at_a_time(any_db_app, clock, monkeypatch):
    """Each run still does at most RETENTION_BATCH a table, but writes RETENTION_STEP rows to a
    transaction and looks through the customers still named a stretch at a time: under gevent a
    run shares the one thread with every request. Stretches of 3 and steps of 2 here, with
    customers who came back lately among those who did not, two of them created in one instant."""
    monkeypatch.setattr(privacy, "RETENTION_STEP", 2)
    monkeypatch.setattr(privacy, "CUSTOMERS_LOOKED_THROUGH", 3)
    pauses = []
    monkeypatch.setattr(cooperative, "let_others_run", lambda: pauses.append(True))
    any_db_app.config["RETENTION_BATCH"] = 3
    _branch, (service, _b), _counters, _alice = make_branch_setup()
    phones = [f"+99555577{n:04d}" for n in range(8)]
    ids = []
    for index, phone in enumerate(phones):
        ids.append(person(phone, f"Person {index}"))
        if index != 2:  # 2 and 3 are created in the same instant
            clock.advance(seconds=1)
    old = [engine.issue_ticket(service.id, customer_id=ids[n]) for n in (0, 3)]  # old visits, anonymised first
    for ticket in old:
        engine.cancel(ticket.id)
    clock.advance(days=91)
    for index in (1, 4, 5, 6):  # came back lately: their recent ticket names them
        engine.cancel(engine.issue_ticket(service.id, customer_id=ids[index]).id)
    with Capture(db.engine) as captured:
        runs = [privacy.anonymise() for _ in range(3)]
    assert [run.get("customers") for run in runs] == [3, 1, None]
    assert runs[0]["tickets"] == 2
    db.session.rollback()
    named = {index for index, customer_id in enumerate(ids) if db.session.get(Customer, customer_id).phone}
    assert named == {1, 4, 5, 6}
    writes = [s for s, _ in captured.statements if s.lstrip().upper().startswith("UPDATE CUSTOMER")]
    assert len(writes) == 3  # 2 + 1 in the first run (its batch of 3), 1 in the second
    assert len(pauses) >= 4  # requests and screens go first between two steps or stretches
    # Where each stretch ends (a statement of the customers alone): the first run ends after two stretches,
    # the customers before the instant of 2 and 3, then that instant; the second and third look
    # through the rest too, those before the instant of the third still named, that instant, the rest.
    looked = [s for s, _ in captured.statements if re.match(r"\s*SELECT customer\.\w+ \s*FROM customer\s+WHERE", s)
              and "EXISTS" not in s]
    assert len(looked) == 2 + 3 + 3


def _plan(statement, parameters) -> str:
    if db.engine.dialect.name == "sqlite":
        rows = db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return " | ".join(str(row[-1]) for row in rows)
    rows = db.session.connection().exec_driver_sql("EXPLAIN " + statement, parameters).all()
    return " | ".join(str(row[0]) for row in rows)


def test_each_stretch_of_customers_is_a_range_of_the_index_even_when_all_came_in_one_instant(any_db_app, clock,
                                                                                         monkeypatch):
    """An import creates thousands of customers in one instant. The customers still named are
    looked through a stretch at a time in order of (created_at, id), the columns of
    ix_customer_identified; every statement of a run is explained by the database itself, and
    where it bounds the id the index's range does too, so a stretch starts where the last ended
    and not at the instant's first customer (which made each stretch dearer than the one before)."""
    monkeypatch.setattr(privacy, "CUSTOMERS_LOOKED_THROUGH", 3)
    monkeypatch.setattr(privacy, "RETENTION_STEP", 2)
    monkeypatch.setattr(cooperative, "let_others_run", lambda: None)
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.execute(sql("SET enable_seqscan = off"))  # (a few rows: the planner would read them all)
    before = person("+995555780100", "Earlier")
    clock.advance(seconds=1)
    ids = [person(f"+99555578{n:04d}", f"Person {n}") for n in range(10)]  # one instant, all ten
    clock.advance(seconds=1)
    after = person("+995555780101", "Later")
    _branch, (service, _b), _counters, _alice = make_branch_setup()
    clock.advance(days=91)
    for index in (0, 1, 2, 3, 4, 5, 6, 8):  # came back lately: of the ten only 7 and 9 have gone quiet
        engine.cancel(engine.issue_ticket(service.id, customer_id=ids[index]).id)
    with Capture(db.engine) as captured:
        assert privacy.anonymise()["customers"] == 4
    db.session.rollback()
    assert {customer.id for customer in db.session.scalars(select(Customer).where(Customer.phone.is_(None)))} == {
        before, ids[7], ids[9], after}
    looked = [(s, p) for s, p in captured.statements if re.match(r"\s*SELECT customer\.(created_at|id)\s", s)]
    by_id = 0
    for statement, parameters in looked:
        plan = _plan(statement, parameters)
        assert "ix_customer_identified" in plan, plan
        if re.search(r"customer\.id\)? > ", statement):  # (customer.id > ?, or in a row value)
            by_id += 1
            ranged = re.search(r"ix_customer_identified \([^)]*\bid\)?>\(?\?" if not postgresql else
                               r"Index Cond: \([^|]*\bid\)? > ", plan)
            assert ranged, (statement, plan)
    assert by_id >= 6  # the instant's ten a stretch of three at a time: each found, then looked through
