"""The reports over HTTP: the JSON's shape, refused input (400 naming the field), who may see what
(managers their branches, admins all, staff none), the CSV files and the pages in every language."""
import pytest

from core import engine
from core.extensions import db

from .constants import START
from .helpers import bearer, login, make_branch, make_counter, make_service, make_staff

DAY = START.date().isoformat()  # Monday 2026-03-02; the branch is on UTC


@pytest.fixture
def world(app, clock):
    """Branch 1 with two tickets: A001 waits 5 minutes and is served in 3; A002 leaves while waiting.
    Branch 2 is another manager's."""
    one, two = make_branch("One"), make_branch("Two")
    a = make_service(one, "A", target_wait_minutes=10)
    make_service(two, "A")
    counter = make_counter(one, "1", [a])
    make_staff("admin", role="admin")
    make_staff("manager", role="manager", branch=one)
    make_staff("other", role="manager", branch=two)
    make_staff("clerk", branch=one)
    db.session.commit()
    first = engine.issue_ticket(a.id)
    second = engine.issue_ticket(a.id)
    clock.advance(minutes=5)
    engine.call_next(counter.id)
    clock.advance(minutes=1)
    engine.start_serving(first.id)
    clock.advance(minutes=3)
    engine.complete(first.id)
    engine.cancel(second.id)
    return {"one": one, "two": two, "a": a}


def summary(client, branch, first=DAY, last=DAY, **extra):
    return client.get("/api/v1/reports/summary", query_string={"branch": branch.id, "from": first, "to": last, **extra})


def test_the_summary_as_json(client, world):
    login(client, "manager")
    answer = summary(client, world["one"])
    assert answer.status_code == 200, answer.text
    found = answer.json
    assert (found["branch"], found["from"], found["to"], found["days"], found["service"]) == (
        world["one"].id, DAY, DAY, 1, None)
    assert (found["visits"], found["served"], found["no_shows"], found["left_before_called"]) == (2, 1, 0, 1)
    assert found["wait_minutes"] == {"count": 1, "mean": 5.0, "median": 5.0, "p90": 5.0}
    assert found["service_minutes"] == {"count": 1, "mean": 3.0, "median": 3.0, "p90": 3.0}
    assert found["service_level"] == 1.0
    assert {"sent", "delivered", "failed", "replies", "reply_rate"} <= set(found["texts"])
    assert {"sent", "answered", "response_rate", "mean_score", "distribution"} <= set(found["surveys"])
    assert found["surveys"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    previous = found["previous"]
    assert (previous["from"], previous["to"], previous["visits"]) == ("2026-03-01", "2026-03-01", 0)
    only_a = summary(client, world["one"], service="a").json  # codes are read in capitals
    assert (only_a["service"], only_a["visits"]) == ("A", 2)


def test_heatmap_and_breakdowns(client, world):
    login(client, "admin")
    heat = client.get("/api/v1/reports/heatmap", query_string={"branch": world["one"].id, "from": DAY, "to": DAY})
    assert heat.status_code == 200
    assert heat.json["arrivals"][0][9] == 2 and heat.json["mean_wait_minutes"][0][9] == 5.0  # Monday 09:00
    by = client.get("/api/v1/reports/breakdown",
                    query_string={"branch": world["one"].id, "from": DAY, "to": DAY, "by": "counter"}).json
    assert [(row["name"], row["visits"], row["served"]) for row in by["rows"]] == [("1", 1, 1)]
    assert by["by"] == "counter" and by["previous"] == []
    staff = client.get("/api/v1/reports/breakdown", query_string={"branch": world["one"].id, "from": DAY,
                                                                   "to": DAY, "by": "staff"}).json
    assert staff["rows"] == []  # the engine was driven without a staff member here
    bad = client.get("/api/v1/reports/breakdown",
                     query_string={"branch": world["one"].id, "from": DAY, "to": DAY, "by": "weather"})
    assert bad.status_code == 400 and bad.json["detail"] == {"by": "unknown"}


@pytest.mark.parametrize("first, last, fields", [
    (None, DAY, {"from"}),
    ("2026-13-01", DAY, {"from"}),
    ("2026-03-02", "02/03/2026", {"to"}),
    ("2026-03-02", "2026-03-01", {"to"}),  # to before from
    ("2025-03-01", "2026-03-02", {"to"}),  # 367 days
    ("9999-12-31", "9999-12-31", {"from", "to"}),
    ("２０２６-03-02", DAY, {"from"}),
])
def test_bad_days_are_refused_naming_the_field(client, world, first, last, fields):
    login(client, "manager")
    query = {"branch": world["one"].id, "to": last, **({"from": first} if first else {})}
    answer = client.get("/api/v1/reports/summary", query_string=query)
    assert answer.status_code == 400, answer.text
    assert set(answer.json["detail"]) == fields


def test_a_year_of_366_days_is_one_report(client, world):
    login(client, "manager")
    assert summary(client, world["one"], "2025-03-02", "2026-03-02").status_code == 200


def test_bad_filters_are_refused(client, world):
    login(client, "manager")
    answer = summary(client, world["one"], service="Z", counter="abc", staff="999")
    assert answer.status_code == 400
    assert set(answer.json["detail"]) == {"service", "counter", "staff"}


def test_who_sees_which_branch(client, world):
    assert summary(client, world["one"]).status_code == 401
    login(client, "clerk")
    assert summary(client, world["one"]).status_code == 403
    login(client, "other")  # a manager of branch 2
    assert summary(client, world["one"]).status_code == 404
    assert summary(client, world["two"]).status_code == 200
    for path in ("/reports/", "/reports/export/summary.csv", "/reports/export/tickets.csv"):
        assert client.get(path, query_string={"branch": world["one"].id}).status_code == 404
    headers = bearer("admin")
    assert client.get("/api/v1/reports/summary", headers=headers,
                      query_string={"branch": world["two"].id, "from": DAY, "to": DAY}).status_code == 200


def test_staff_get_no_report_at_all(client, world):
    login(client, "clerk")
    for path in ("/reports/", "/reports/breakdown", "/reports/export/tickets.csv", "/api/v1/reports/heatmap"):
        assert client.get(path, query_string={"branch": world["one"].id}).status_code == 403, path


def test_csv_files_open_in_excel_and_name_no_one(client, world):
    login(client, "manager")
    query = {"branch": world["one"].id, "from": DAY, "to": DAY}
    tickets = client.get("/reports/export/tickets.csv", query_string=query)
    assert tickets.status_code == 200 and tickets.mimetype == "text/csv"
    assert 'filename="seed-tickets-branch' in tickets.headers["Content-Disposition"]
    assert tickets.data.startswith("\ufeff".encode())
    lines = tickets.data.decode("utf-8-sig").splitlines()
    assert len(lines) == 3 and lines[1].startswith("A001,2026-03-02,A,1,completed,staff,")
    assert "2026-03-02 09:00:00,2026-03-02 09:05:00,2026-03-02 09:06:00,2026-03-02 09:09:00,5.0,3.0,0" in lines[1]
    assert ",cancelled," in lines[2]
    text = client.get("/reports/export/summary.csv", query_string=query).data.decode("utf-8-sig")
    assert "Visits (tickets),2,0" in text and "Wait until called (minutes): Median,5.0," in text
    for path in ("heatmap.csv", "texts.csv"):
        assert client.get(f"/reports/export/{path}", query_string=query).data.startswith("\ufeff".encode())
    by = client.get("/reports/export/breakdown.csv", query_string={**query, "by": "service"}).data.decode("utf-8-sig")
    assert by.splitlines()[1].startswith("A · Service A,2,")


def test_a_cell_that_excel_would_run_is_written_as_text(app):
    from reports.exports import cell

    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and cell("-5") == "'-5" and cell(-5) == -5 and cell(None) == ""


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_the_report_pages_in_every_language(client, world, language):
    login(client, "manager")
    query = {"branch": world["one"].id, "from": DAY, "to": DAY, "lang": language}
    page = client.get("/reports/", query_string=query)
    assert page.status_code == 200, page.text
    assert 'id="summary"' in page.text and "<svg" in page.text and 'id="heatmap"' in page.text
    assert "@page" not in page.text  # the print rules live in reports.css
    breakdown = client.get("/reports/breakdown", query_string={**query, "by": "counter"})
    assert breakdown.status_code == 200 and 'id="breakdown-table"' in breakdown.text


def test_a_page_without_a_range_shows_the_last_four_weeks(client, world, clock):
    login(client, "manager")
    page = client.get("/reports/", query_string={"branch": world["one"].id})
    assert page.status_code == 200
    assert 'value="2026-02-03"' in page.text and f'value="{DAY}"' in page.text


def test_a_page_with_a_bad_range_says_which_field(client, world):
    login(client, "manager")
    page = client.get("/reports/", query_string={"branch": world["one"].id, "from": DAY, "to": "2026-03-01"})
    assert page.status_code == 400
    assert 'id="r-to-error"' in page.text and 'id="summary"' not in page.text


def test_the_stylesheet_prints_on_a4(client, world):
    css = client.get("/reports/static/reports.css")
    assert css.status_code == 200 and b"size: A4" in css.data
    css.close()


def test_the_wait_told_at_check_in_is_kept_and_judged(client, app, clock):
    """Check-in keeps the estimate it shows on the ticket (one statement more, however long the queue),
    and the summary sets it against the real wait."""
    from core.models import Ticket
    from kiosk.checkin import ticket_result

    from .test_positions import count_statements

    branch = make_branch("Quotes")
    a = make_service(branch, "A", minutes=5)
    counter = make_counter(branch, "1", [a], is_open=True)
    make_staff("manager", role="manager", branch=branch)
    db.session.commit()
    told = [client.post("/api/v1/checkins", json={"branch": branch.id, "service": "A"}).json["ticket"]
            for _ in range(3)]
    # 0, 1 and 2 people ahead, 5 minutes each, one counter
    assert [ticket["estimated_wait_minutes"] for ticket in told] == [0, 5, 10]
    assert [db.session.get(Ticket, ticket["id"]).quoted_wait_minutes for ticket in told] == [0, 5, 10]

    def check_in_one():
        with app.test_request_context():
            ticket_result(engine.issue_ticket(a.id, source="kiosk"), sms=False)

    short = count_statements(check_in_one)
    for _ in range(20):
        engine.issue_ticket(a.id)
    assert count_statements(check_in_one) <= short  # no more with 20 more waiting (fewer: already loaded)

    clock.advance(minutes=4)
    engine.call_next(counter.id)  # the first: told 0, waited 4 minutes
    engine.complete(told[0]["id"])
    clock.advance(minutes=8)
    engine.call_next(counter.id)  # the second: told 5, waited 12
    login(client, "manager")
    found = summary(client, branch).json["quoted_wait"]
    # errors +4 and +7 minutes: |mean| 5.5, within 5 minutes: one of two, bias +5.5
    assert found == {"tickets": 2, "mean_absolute_error": 5.5, "within_5_minutes": 0.5, "bias": 5.5}


def test_the_staffing_hint_as_json_csv_and_on_the_page(client, world):
    """Monday 09:00: two arrivals, one served in 3 minutes, called by counter 1."""
    login(client, "manager")
    query = {"branch": world["one"].id, "from": DAY, "to": DAY}
    found = client.get("/api/v1/reports/staffing", query_string=query)
    assert found.status_code == 200, found.text
    # 2 an hour, 180 s: A = 0.1; one counter: C = 0.1, SL = 1 - 0.1 * e^(-0.9 * 600 / 180) = 0.995
    assert found.json["rows"] == [{"weekday": 0, "hour": 9, "days": 1, "arrivals_per_hour": 2.0,
                                   "service_minutes": 3.0, "target_wait_minutes": 10.0, "needed": 1, "open": 1.0}]
    assert found.json["target_share"] == 0.8 and found.json["branch"] == world["one"].id
    assert client.get("/api/v1/reports/staffing", query_string={"branch": world["one"].id}).status_code == 400
    text = client.get("/reports/export/staffing.csv", query_string=query).data.decode("utf-8-sig")
    assert text.splitlines()[1] == "Monday,09:00,1,2.0,3.0,10.0,1,1.0"
    assert 'id="section-quoted_wait"' in client.get("/reports/", query_string=query).text
    for language in ("en", "ja", "ka"):
        page = client.get("/reports/staffing", query_string={**query, "lang": language})
        assert page.status_code == 200 and 'id="staffing-table"' in page.text
    login(client, "clerk")
    assert client.get("/api/v1/reports/staffing", query_string=query).status_code == 403
    assert client.get("/reports/staffing", query_string=query).status_code == 403
