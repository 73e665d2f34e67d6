"""Report figures on a hand-made data set whose answers are worked out here, by hand, in the
comments: a Berlin branch on 2026-03-29 (clocks go forward: a 23-hour day whose first ticket
arrives on the 28th by UTC), the day before as the previous period, a 25-hour October day, and a
Tokyo branch whose day starts at 15:00 UTC. On SQLite and PostgreSQL."""
from datetime import date, datetime, timedelta, timezone

import pytest

from core import reports
from core.extensions import db
from core.models import Ticket, TicketEvent
from core.reports import Period, Selection
from messaging.models import InboxMessage, OutboxMessage, SurveyResponse
from reports import figures, texts

from .helpers import make_branch, make_counter, make_service, make_staff

SUNDAY = date(2026, 3, 29)  # Europe/Berlin: 02:00 CET becomes 03:00 CEST
MIN = 60


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


class Data:
    """Builds rows as the engine and the gateway leave them, with times given by hand."""

    def __init__(self):
        self.numbers = 0

    def ticket(self, branch, service, arrived, day, *, status="completed", wait=None, service_time=None,
               counter=None, staff=None, source="kiosk", transferred_from=None, quoted=None):
        """wait: seconds from arrival to the call (None: never called); service_time: seconds from
        start to finish (the start comes 60 s after the call); quoted: the wait told at check-in (minutes)."""
        self.numbers += 1
        called = arrived + timedelta(seconds=wait) if wait is not None else None
        started = called + timedelta(seconds=60) if status == "completed" else None
        finished = (started + timedelta(seconds=service_time) if status == "completed"
                    else called + timedelta(minutes=5) if status == "no_show" else arrived + timedelta(minutes=30))
        ticket = Ticket(branch_id=branch.id, service_id=service.id, service_day=day, number=self.numbers,
                        label=f"{service.code}{self.numbers:03d}", status=status, source=source, arrived_at=arrived,
                        called_at=called, started_at=started, finished_at=finished, quoted_wait_minutes=quoted,
                        counter_id=counter.id if counter and status != "cancelled" else None)
        db.session.add(ticket)
        db.session.flush()
        events = [("issued", arrived, None)]
        if transferred_from is not None:
            events.append(("transferred", arrived + timedelta(seconds=30), None))
        if called is not None:
            events.append(("called", called, staff))
        if status in ("completed", "no_show"):
            events.append((status, finished, staff))
        elif status == "cancelled":
            events.append(("cancelled", finished, None))
        for kind, at, person in events:
            db.session.add(TicketEvent(ticket_id=ticket.id, at=at, kind=kind, to_status=status,
                                       staff_id=person.id if person else None,
                                       counter_id=counter.id if counter else None, detail={}))
        return ticket

    @staticmethod
    def text(branch, created, status, *, ticket=None, parts=1, sent=True, error=None, kind="welcome"):
        row = OutboxMessage(branch_id=branch.id, to="+4915112345678", body="text", kind=kind, status=status,
                            ticket_id=ticket.id if ticket else None, send_after=created, created_at=created,
                            parts=parts, sent_at=created + timedelta(seconds=5) if sent else None, last_error=error)
        db.session.add(row)
        db.session.flush()
        return row

    def reply(self, branch, received, outcome, status="handled"):
        self.numbers += 1
        db.session.add(InboxMessage(branch_id=branch.id, sender="+4915112345678", body="x", received_at=received,
                                    dedupe_key=f"reply-{self.numbers}", status=status, outcome=outcome))

    def survey(self, branch, ticket, created, text_status, score=None, comment=None):
        outbox = self.text(branch, created, text_status, ticket=ticket, kind="survey",
                           sent=text_status != "failed", error="no status report" if text_status == "failed" else None)
        db.session.add(SurveyResponse(branch_id=branch.id, ticket_id=ticket.id, outbox_id=outbox.id,
                                      phone="+4915112345678", state="done" if score else "scheduled", score=score,
                                      comment=comment, created_at=created,
                                      answered_at=created + timedelta(minutes=3) if score else None))


@pytest.fixture
def berlin(any_db_app):
    """Berlin on Sunday 2026-03-29, local midnight to midnight = 2026-03-28 23:00 to 2026-03-29 22:00 UTC."""
    branch = make_branch("Berlin", timezone="Europe/Berlin", country="DE")
    tokyo = make_branch("Tokyo", timezone="Asia/Tokyo", country="JP")
    a = make_service(branch, "A", target_wait_minutes=10)
    b = make_service(branch, "B", target_wait_minutes=5)
    one, two = make_counter(branch, "1", [a, b]), make_counter(branch, "2", [a, b])
    alice, bob = make_staff("alice", branch=branch), make_staff("bob", branch=branch)
    data = Data()
    day, saturday = SUNDAY, date(2026, 3, 28)
    t = {
        # 00:30 CET on the 29th, still the 28th by UTC
        1: data.ticket(branch, a, utc(2026, 3, 28, 23, 30), day, wait=4 * MIN, service_time=7 * MIN,
                       counter=one, staff=alice, quoted=5),
        # 10:00 CEST, an appointment
        2: data.ticket(branch, a, utc(2026, 3, 29, 8, 0), day, wait=12 * MIN + 20, service_time=6 * MIN,
                       counter=two, staff=bob, source="appointment", quoted=3),
        # called exactly at B's target (5 min): within it
        3: data.ticket(branch, b, utc(2026, 3, 29, 9, 0), day, status="no_show", wait=5 * MIN,
                       counter=one, staff=alice, quoted=0),
        # left before being called
        4: data.ticket(branch, b, utc(2026, 3, 29, 10, 0), day, status="cancelled", quoted=2),
        # transferred from A to B, then served
        5: data.ticket(branch, b, utc(2026, 3, 29, 11, 0), day, wait=20 * MIN, service_time=3 * MIN,
                       counter=two, staff=bob, transferred_from=a),
        # 23:59 CEST: the day's last minute; cancelled after its call (not "left before called")
        6: data.ticket(branch, a, utc(2026, 3, 29, 21, 59), day, status="cancelled", wait=2 * MIN, quoted=10),
    }
    # Next day (00:00 CEST on the 30th) and Tokyo: in no figure of Berlin's Sunday.
    data.ticket(branch, a, utc(2026, 3, 29, 22, 0), date(2026, 3, 30), wait=MIN, service_time=MIN)
    data.ticket(tokyo, make_service(tokyo, "A"), utc(2026, 3, 29, 9, 0), day, wait=MIN, service_time=MIN)
    # Saturday, the previous period: 00:00 CET (23:00 UTC on the 27th) and 23:59 CET.
    data.ticket(branch, a, utc(2026, 3, 27, 23, 0), saturday, wait=10 * MIN, service_time=5 * MIN,
                counter=one, staff=alice)
    data.ticket(branch, b, utc(2026, 3, 28, 22, 59), saturday, status="no_show", wait=6 * MIN,
                counter=one, staff=alice)
    data.ticket(branch, a, utc(2026, 3, 27, 22, 59, 59), date(2026, 3, 27), wait=MIN, service_time=MIN)  # Friday

    # Texts written on Sunday
    noon = utc(2026, 3, 29, 10, 0)
    data.text(branch, utc(2026, 3, 28, 23, 31), "delivered", ticket=t[1])
    data.text(branch, noon, "delivered", ticket=t[2], parts=2)
    data.text(branch, noon, "failed", ticket=t[3], sent=False, error="CMS ERROR 500")
    data.text(branch, noon, "failed", ticket=t[5], error="CMS ERROR 500")
    data.text(branch, noon, "sent", kind="reminder")
    data.text(branch, noon, "suppressed", parts=None, sent=False, kind="reminder")
    data.text(branch, utc(2026, 3, 29, 22, 30), "delivered")  # Monday
    data.text(tokyo, noon, "delivered")
    data.survey(branch, t[1], noon, "delivered", score=5)
    data.survey(branch, t[2], noon, "delivered", score=2, comment="Too slow")
    data.survey(branch, t[5], noon, "sent")
    data.survey(branch, t[3], noon, "failed")
    for outcome, status in (("opted out", "handled"), ("survey score 5", "handled"), ("late until 10:30", "handled"),
                            ("to staff", "unhandled"), ("appointment confirmed", "handled"), (None, "new")):
        data.reply(branch, noon, outcome, status)
    data.reply(branch, utc(2026, 3, 29, 22, 0), "opted out")  # Monday
    data.reply(tokyo, noon, "opted out")
    db.session.commit()
    return {"branch": branch, "tokyo": tokyo, "a": a, "b": b, "one": one, "two": two, "alice": alice, "bob": bob,
            "tickets": t, "data": data}


def sunday(world, first=SUNDAY, last=SUNDAY):
    return Period.of(world["branch"], first, last)


def test_the_day_is_the_branchs_23_hours(berlin):
    period = sunday(berlin)
    assert (period.start, period.end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert period.previous() == Period.of(berlin["branch"], date(2026, 3, 28), date(2026, 3, 28))
    assert period.previous().start == utc(2026, 3, 27, 23)


def test_every_queue_figure_of_the_day(berlin):
    assert reports.visits(sunday(berlin)) == {
        "visits": 6, "walk_ins": 5, "appointments": 1, "served": 3, "no_shows": 1, "cancelled": 2,
        "transferred": 1, "left_before_called": 1,
        # waits of the called and seen through (1, 2, 3, 5): 240, 740, 300, 1200 s -> 240 300 740 1200
        # mean 2480/4 = 620 s; median (300 + 740)/2 = 520 s; p90 at rank 2.7: 740 + 0.7 * 460 = 1062 s
        "wait_minutes": {"count": 4, "mean": 10.33, "median": 8.67, "p90": 17.7},
        # served 1, 2, 5: 420, 360, 180 s; mean 320 s; median 360 s; p90 at rank 1.8: 360 + 0.8 * 60 = 408 s
        "service_minutes": {"count": 3, "mean": 5.33, "median": 6.0, "p90": 6.8},
        # A (10 min): 240 s yes, 740 s no; B (5 min): 300 s yes (exactly), 1200 s no
        "service_level": 0.5,
        # quoted and called: 1 (240 s vs 5 min: -60 s), 2 (740 vs 3 min: +560), 3 (300 vs 0: +300, exactly
        # 5 min off: within), 6 (120 vs 10 min: -480); 4 was never called, 5 was told nothing.
        # |error| 1400/4 = 350 s; within ±5 min: 1 and 3 of 4; bias 320/4 = 80 s
        "quoted_wait": {"tickets": 4, "mean_absolute_error": 5.83, "within_5_minutes": 0.5, "bias": 1.33},
    }


def test_the_previous_period_is_the_day_before_whole(berlin):
    found = figures.summary(sunday(berlin))["previous"]
    assert (found["from"], found["to"], found["days"]) == ("2026-03-28", "2026-03-28", 1)
    # 00:00 CET and 23:59 CET on Saturday; Friday's 23:59:59 CET is not in it
    assert {k: found[k] for k in ("visits", "served", "no_shows", "service_level")} == {
        "visits": 2, "served": 1, "no_shows": 1, "service_level": 0.5}  # A 600 s within 10 min; B 360 s > 5 min
    # waits 360, 600: mean 480 s, median 480 s, p90 360 + 0.9 * 240 = 576 s
    assert found["wait_minutes"] == {"count": 2, "mean": 8.0, "median": 8.0, "p90": 9.6}
    assert found["service_minutes"] == {"count": 1, "mean": 5.0, "median": 5.0, "p90": 5.0}
    assert found["texts"]["written"] == 0 and found["surveys"]["sent"] == 0


def test_texts_of_the_day(berlin):
    assert texts.texts(sunday(berlin)) == {
        # 6 written for the queue and reminders, 4 surveys
        "written": 10, "sent": 6, "delivered": 4, "failed": 3, "suppressed": 1,
        "failed_by_reason": {"CMS ERROR 500": 2, "no status report": 1},
        # parts of what left: 1 + 2 + 1 (failed after sending) + 1 + 3 surveys
        "parts": 8,
        "replies": 6, "reply_rate": 1.0, "opt_outs": 1,
        "replies_by_meaning": {"stop": 1, "start": 0, "help": 0, "late": 1, "confirm": 1, "cancel": 0,
                               "reschedule": 0, "survey_score": 1, "survey_other": 0, "unknown": 2},
        # the clock is at 2026-03-02: no appointment's time has passed
        "reminders": {"reminded": {"appointments": 0, "no_shows": 0, "no_show_rate": None},
                      "not_reminded": {"appointments": 0, "no_shows": 0, "no_show_rate": None}},
    }


def test_no_shows_with_and_without_a_delivered_reminder(berlin, clock):
    """Sunday's appointments, seen at 22:00 CEST: reminded ones are the ones whose reminder was delivered."""
    from core.models import Appointment

    branch, a, b, t, data = berlin["branch"], berlin["a"], berlin["b"], berlin["tickets"], berlin["data"]
    clock.set(utc(2026, 3, 29, 20, 0))

    def appointment(service, starts, status, ticket=None, reminder=None):
        row = Appointment(branch_id=branch.id, service_id=service.id, starts_at=starts, status=status,
                          ticket_id=ticket.id if ticket else None, created_at=utc(2026, 3, 1, 9, 0))
        db.session.add(row)
        db.session.flush()
        if reminder is not None:
            written, status = reminder
            data.text(branch, written, status, kind="reminder", sent=status != "failed").appointment_id = row.id
        return row

    friday, saturday = utc(2026, 3, 27, 8, 0), utc(2026, 3, 28, 8, 0)
    appointment(a, utc(2026, 3, 29, 8, 0), "checked_in", t[2], (saturday, "delivered"))  # reminded, came
    appointment(a, utc(2026, 3, 29, 10, 0), "booked", reminder=(friday, "delivered"))  # reminded, never came
    appointment(b, utc(2026, 3, 29, 11, 0), "checked_in", t[3], (saturday, "failed"))  # not reminded, a no-show
    appointment(a, utc(2026, 3, 29, 12, 0), "confirmed", reminder=(saturday, "sent"))  # not reminded, never came
    appointment(a, utc(2026, 3, 29, 13, 0), "cancelled", reminder=(saturday, "delivered"))  # not counted
    appointment(a, utc(2026, 3, 29, 21, 0), "booked", reminder=(saturday, "delivered"))  # 23:00 CEST: not yet
    appointment(a, utc(2026, 3, 30, 8, 0), "booked")  # Monday
    db.session.commit()
    assert texts.reminders(sunday(berlin)) == {
        "reminded": {"appointments": 2, "no_shows": 1, "no_show_rate": 0.5},
        "not_reminded": {"appointments": 2, "no_shows": 2, "no_show_rate": 1.0}}
    assert texts.reminders(sunday(berlin), Selection(service_id=b.id)) == {
        "reminded": {"appointments": 0, "no_shows": 0, "no_show_rate": None},
        "not_reminded": {"appointments": 1, "no_shows": 1, "no_show_rate": 1.0}}
    assert texts.reminders(sunday(berlin), Selection(counter_id=berlin["one"].id)) is None
    assert figures.summary(sunday(berlin))["texts"]["reminders"]["reminded"]["no_show_rate"] == 0.5


def test_surveys_of_the_day(berlin):
    assert texts.surveys(sunday(berlin)) == {
        "sent": 3, "answered": 2, "response_rate": 0.6667, "mean_score": 3.5,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}, "csat": 0.5}
    follow = texts.follow_up(sunday(berlin))
    assert [(row["ticket"], row["score"], row["comment"]) for row in follow] == [("A002", 2, "Too slow")]


def test_one_service(berlin):
    only_b = Selection(service_id=berlin["b"].id)
    found = figures.period_figures(sunday(berlin), only_b)
    # tickets 3, 4, 5: waits 300, 1200 -> mean 750 s, median 750 s, p90 300 + 0.9 * 900 = 1110 s
    assert {k: found[k] for k in ("visits", "served", "no_shows", "cancelled", "transferred", "left_before_called",
                                  "service_level")} == {
        "visits": 3, "served": 1, "no_shows": 1, "cancelled": 1, "transferred": 1, "left_before_called": 1,
        "service_level": 0.5}
    assert found["wait_minutes"] == {"count": 2, "mean": 12.5, "median": 12.5, "p90": 18.5}
    assert found["service_minutes"] == {"count": 1, "mean": 3.0, "median": 3.0, "p90": 3.0}
    # texts of tickets 3 and 5: the two failed, the failed survey, the survey sent for 5
    assert found["texts"] == {"written": 4, "sent": 1, "delivered": 0, "failed": 3, "suppressed": 0, "parts": 2,
                              "failed_by_reason": {"CMS ERROR 500": 2, "no status report": 1},
                              "replies": None, "reply_rate": None, "opt_outs": None, "replies_by_meaning": None,
                              "reminders": {"reminded": {"appointments": 0, "no_shows": 0, "no_show_rate": None},
                                            "not_reminded": {"appointments": 0, "no_shows": 0, "no_show_rate": None}}}
    assert found["surveys"] == {"sent": 1, "answered": 0, "response_rate": 0.0, "mean_score": None,
                                "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}, "csat": None}


def test_one_staff_member_and_one_counter(berlin):
    alice = reports.visits(sunday(berlin), Selection(staff_id=berlin["alice"].id))
    # alice closed tickets 1 (served, 240 s wait, 420 s service) and 3 (no-show, 300 s)
    assert {k: alice[k] for k in ("visits", "served", "no_shows", "service_level")} == {
        "visits": 2, "served": 1, "no_shows": 1, "service_level": 1.0}
    assert alice["wait_minutes"] == {"count": 2, "mean": 4.5, "median": 4.5, "p90": 4.9}  # 240 + 0.9 * 60 = 294 s
    two = reports.visits(sunday(berlin), Selection(counter_id=berlin["two"].id))
    assert (two["visits"], two["served"], two["appointments"], two["wait_minutes"]["median"]) == (2, 2, 1, 16.17)


def test_breakdowns(berlin):
    by_service = {row["name"]: row for row in figures.breakdown(sunday(berlin), "service")}
    assert list(by_service) == ["A · Service A", "B · Service B"]  # 3 visits each: by name
    a = by_service["A · Service A"]
    assert (a["visits"], a["served"], a["cancelled"], a["left_before_called"], a["service_level"]) == (3, 2, 1, 0, 0.5)
    assert a["wait_minutes"] == {"count": 2, "mean": 8.17, "median": 8.17, "p90": 11.5}  # 240, 740 s: 240 + 0.9 * 500
    assert (a["surveys"]["answered"], a["surveys"]["mean_score"], a["surveys"]["csat"]) == (2, 3.5, 0.5)
    b = by_service["B · Service B"]
    assert (b["visits"], b["transferred"], b["surveys"]["sent"], b["surveys"]["answered"]) == (3, 1, 1, 0)

    by_staff = {row["name"]: row for row in figures.breakdown(sunday(berlin), "staff")}
    assert {name: (row["visits"], row["served"], row["no_shows"]) for name, row in by_staff.items()} == {
        "Alice": (2, 1, 1), "Bob": (2, 2, 0)}
    assert by_staff["Bob"]["service_minutes"]["median"] == 4.5  # 360 and 180 s
    by_counter = {row["name"]: row["visits"] for row in figures.breakdown(sunday(berlin), "counter")}
    assert by_counter == {"1": 2, "2": 2}  # tickets 4 and 6 never reached a counter's end

    # B's tickets only: alice closed 3 (its survey text failed), bob 5 (its survey sent, unanswered)
    only_b = figures.breakdown(sunday(berlin), "staff", Selection(service_id=berlin["b"].id))
    assert {row["name"]: (row["visits"], row["no_shows"], row["surveys"]["sent"]) for row in only_b} == {
        "Alice": (1, 1, 0), "Bob": (1, 0, 1)}


def test_heatmap_by_the_branch_clock(berlin):
    found = reports.heatmap(sunday(berlin))
    sunday_row = found["arrivals"][6]
    # 00:30 CET, 10:00, 11:00, 12:00, 13:00 and 23:59 CEST
    assert {hour: n for hour, n in enumerate(sunday_row) if n} == {0: 1, 10: 1, 11: 1, 12: 1, 13: 1, 23: 1}
    assert sum(map(sum, found["arrivals"][:6])) == 0
    waits = found["mean_wait_minutes"][6]
    assert (waits[0], waits[10], waits[11], waits[12], waits[13], waits[23]) == (4.0, 12.33, 5.0, None, 20.0, None)
    assert found["weeks"] == [0, 0, 0, 0, 0, 0, 1]
    assert found["busiest"][0] == {"weekday": 6, "hour": 0, "arrivals": 1}


def test_the_25_hour_day_and_its_repeated_hour(any_db_app):
    """2026-10-25 in Berlin runs from 22:00 UTC on the 24th to 23:00 UTC on the 25th; 02:30 happens twice."""
    branch = make_branch("Berlin", timezone="Europe/Berlin")
    a = make_service(branch, "A")
    data, day = Data(), date(2026, 10, 25)
    for moment in (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30),
                   utc(2026, 10, 25, 22, 59)):
        data.ticket(branch, a, moment, day, wait=MIN, service_time=MIN)
    for moment, other in ((utc(2026, 10, 24, 21, 59), date(2026, 10, 24)), (utc(2026, 10, 25, 23, 0), date(2026, 10, 26))):
        data.ticket(branch, a, moment, other, wait=MIN, service_time=MIN)
    db.session.commit()
    period = Period.of(branch, day, day)
    assert period.end - period.start == timedelta(hours=25)
    assert reports.visits(period)["visits"] == 4
    arrivals = reports.heatmap(period)["arrivals"][6]  # a Sunday
    assert {hour: n for hour, n in enumerate(arrivals) if n} == {0: 1, 2: 2, 23: 1}  # 02:30 CEST and 02:30 CET


def test_tokyo_days_start_at_15_utc(any_db_app):
    branch = make_branch("Tokyo", timezone="Asia/Tokyo", country="JP")
    a = make_service(branch, "A", target_wait_minutes=15)
    data, monday = Data(), date(2026, 3, 2)
    data.ticket(branch, a, utc(2026, 3, 1, 15, 30), monday, wait=15 * MIN, service_time=MIN)  # 00:30 JST
    data.ticket(branch, a, utc(2026, 3, 2, 9, 0), monday, wait=15 * MIN + 1, service_time=MIN)  # 18:00 JST
    data.ticket(branch, a, utc(2026, 3, 2, 14, 59), monday, status="no_show", wait=MIN)  # 23:59 JST
    data.ticket(branch, a, utc(2026, 3, 2, 15, 0), date(2026, 3, 3), wait=MIN, service_time=MIN)  # Tuesday
    data.ticket(branch, a, utc(2026, 3, 1, 14, 59), date(2026, 3, 1), wait=MIN, service_time=MIN)  # Sunday
    db.session.commit()
    period = Period.of(branch, monday, monday)
    found = reports.visits(period)
    # waits 900, 901, 60 s: 900 within 15 minutes, 901 not, 60 yes
    assert (found["visits"], found["served"], found["no_shows"], found["service_level"]) == (3, 2, 1, 0.6667)
    assert found["wait_minutes"]["median"] == 15.0
    heat = reports.heatmap(period)["arrivals"][0]
    assert {hour: n for hour, n in enumerate(heat) if n} == {0: 1, 18: 1, 23: 1}
    assert reports.visits(Period.of(branch, monday, date(2026, 3, 3)))["visits"] == 4


def test_an_empty_period_has_no_averages(berlin):
    found = figures.summary(Period.of(berlin["branch"], date(2025, 1, 1), date(2025, 1, 31)))
    assert found["visits"] == 0 and found["previous"]["days"] == 31
    assert found["wait_minutes"] == {"count": 0, "mean": None, "median": None, "p90": None}
    assert found["service_level"] is None and found["texts"]["reply_rate"] is None
    assert found["surveys"]["mean_score"] is None and found["surveys"]["csat"] is None


def test_every_reply_outcome_the_router_gives_has_its_meaning():
    assert texts.meaning("opted out") == "stop" and texts.meaning("opted in") == "start"
    assert texts.meaning("late until 10:30") == "late" and texts.meaning("appointment late 15 min") == "late"
    assert texts.meaning("late: no ticket or appointment") == "late"
    assert texts.meaning("confirm: no appointment") == "confirm" and texts.meaning("appointment confirmed") == "confirm"
    assert texts.meaning("appointment cancelled") == "cancel" and texts.meaning("cancel: no appointment") == "cancel"
    assert texts.meaning("reschedule: slots offered") == "reschedule"
    assert texts.meaning("appointment rescheduled") == "reschedule"
    assert texts.meaning("survey score 3") == "survey_score" and texts.meaning("survey comment") == "survey_other"
    assert texts.meaning("help sent") == "help"
    assert texts.meaning("to staff") == texts.meaning(None) == "unknown"


def test_percentiles_interpolate_between_neighbours():
    assert reports.percentile([10], 0.9) == 10
    assert reports.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert reports.percentile([0, 100], 0.9) == pytest.approx(90)
    assert reports.minutes([60, 120, 180]) == {"count": 3, "mean": 2.0, "median": 2.0, "p90": 2.8}


def test_a_period_arithmetic_of_days():
    period = Period(1, "UTC", date(2026, 2, 1), date(2026, 2, 28))
    assert period.days == 28 and period.previous().first_day == date(2026, 1, 4)
    assert reports.weekday_counts(period) == [4] * 7


def test_no_report_walks_the_tickets_texts_or_events(app, clock):
    """On the schema the migrations build (SQLite, whose planner has no statistics to go by), every
    report reads the tickets by the (branch, day) index, the texts by their time and the events by
    kind and time or by ticket, the texts, replies and surveys by branch and time: nothing is walked."""
    from sqlalchemy import event

    from reports.staffing import staffing

    branch = make_branch("Berlin", timezone="Europe/Berlin")
    a = make_service(branch, "A")
    make_staff("alice", branch=branch)
    db.session.commit()
    period = Period.of(branch, date(2026, 3, 1), date(2026, 3, 31))
    seen = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        for selection in (Selection(), Selection(service_id=a.id), Selection(staff_id=1), Selection(counter_id=1)):
            figures.summary(period, selection)
            reports.heatmap(period, selection)
            staffing(period, selection)
            for by in reports.GROUPINGS:
                figures.breakdown(period, by, selection)
            texts.follow_up(period, selection)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    walked = set()
    for statement, parameters in seen:
        for step in db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all():
            words = step[3].split()
            if words[0] == "SCAN":
                walked.add(words[1])
            if words[:2] == ["SEARCH", "ticket"] and "INDEX" in words:
                assert "service_day>?" in step[3] or "ticket_id=?" in step[3], step[3]
    assert walked == set(), walked


def test_erlang_c_against_the_textbook():
    """The textbook call-centre example: 100 calls in 30 minutes (200 an hour), 180 s each: 10 Erlangs;
    goal 80 % answered within 20 s. With 11 agents a call waits with probability 68.21 %; 13 reach
    79.6 %, 14 reach 88.8 %: 14 are needed. Every value also from the formula with factorials."""
    import math

    from reports.staffing import counters_needed, erlang_c, service_level

    def by_factorials(servers, traffic):
        waiting = traffic ** servers / math.factorial(servers) * servers / (servers - traffic)
        return waiting / (sum(traffic ** k / math.factorial(k) for k in range(servers)) + waiting)

    assert erlang_c(11, 10) == pytest.approx(0.6821, abs=5e-5)
    assert service_level(13, 10, 180, 20) == pytest.approx(0.7956, abs=5e-5)
    assert service_level(14, 10, 180, 20) == pytest.approx(0.8884, abs=5e-5)
    assert counters_needed(200, 180, 20) == 14
    for servers, traffic in ((1, 0.5), (2, 1.5), (5, 3.2), (30, 25.0), (60, 55.5)):
        assert erlang_c(servers, traffic) == pytest.approx(by_factorials(servers, traffic), rel=1e-9)
    assert erlang_c(1, 0.4) == pytest.approx(0.4)  # one counter: the chance it is busy
    assert erlang_c(3, 3) == 1.0 and service_level(3, 3, 60, 60) == 0.0  # no end to the queue
    assert counters_needed(0, 300, 60) == 0


def test_staffing_per_weekday_and_hour(any_db_app):
    """A UTC branch, 2026-03-02 to 03-10 (two Mondays, two Tuesdays). Every ticket served in 6 minutes.

    Monday 09: 20 arrivals on the 2nd (counters 1 and 2 calling), 10 on the 9th (counter 1 only): 15 an
    hour, 360 s each: A = 1.5 Erlangs; A's target 1 minute.
      N = 2: C = 4.5 / 7 = 0.6429; SL = 1 - 0.6429 * e^(-0.5 * 60 / 360) = 0.4085 < 0.8
      N = 3: C = 1.125 / 4.75 = 0.2368; SL = 1 - 0.2368 * e^(-1.5 * 60 / 360) = 0.8156: 3 needed; open (2 + 1) / 2
    Tuesday 09 (only the 3rd): one A (target 1) and three B (target 5): target (1 + 15) / 4 = 4 minutes;
    4 an hour: A = 0.4. N = 1: SL = 1 - 0.4 * e^(-0.6 * 240 / 360) = 0.7319; N = 2: C = 0.1 / 1.5,
    SL = 1 - 0.0667 * e^(-1.6 * 240 / 360) = 0.977: 2 needed. The A ticket is called at 10:05 by counter 1:
    Tuesday 10 has no arrival, one counter calling."""
    from reports.staffing import staffing

    branch = make_branch("Rota", timezone="UTC")
    a = make_service(branch, "A", target_wait_minutes=1)
    b = make_service(branch, "B", target_wait_minutes=5)
    one, two = make_counter(branch, "1", [a, b]), make_counter(branch, "2", [a, b])
    data = Data()
    for i in range(20):
        data.ticket(branch, a, utc(2026, 3, 2, 9, 2 * i), date(2026, 3, 2), wait=MIN, service_time=360,
                    counter=one if i % 2 else two)
    for i in range(10):
        data.ticket(branch, a, utc(2026, 3, 9, 9, 5 * i), date(2026, 3, 9), wait=MIN, service_time=360, counter=one)
    data.ticket(branch, a, utc(2026, 3, 3, 9, 0), date(2026, 3, 3), wait=65 * MIN, service_time=360, counter=one)
    for i in range(3):
        data.ticket(branch, b, utc(2026, 3, 3, 9, 10 * i), date(2026, 3, 3), wait=MIN, service_time=360, counter=two)
    db.session.commit()
    found = staffing(Period.of(branch, date(2026, 3, 2), date(2026, 3, 10)))
    assert found["target_share"] == 0.8
    assert found["rows"] == [
        {"weekday": 0, "hour": 9, "days": 2, "arrivals_per_hour": 15.0, "service_minutes": 6.0,
         "target_wait_minutes": 1.0, "needed": 3, "open": 1.5},
        {"weekday": 1, "hour": 9, "days": 1, "arrivals_per_hour": 4.0, "service_minutes": 6.0,
         "target_wait_minutes": 4.0, "needed": 2, "open": 1.0},
        {"weekday": 1, "hour": 10, "days": 1, "arrivals_per_hour": 0.0, "service_minutes": None,
         "target_wait_minutes": None, "needed": 0, "open": 1.0},
    ]
