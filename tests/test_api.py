"""The JSON API: every engine action, reads, and every refusal with a clear JSON error."""
import pytest

from core.extensions import db

from .helpers import bearer, login, make_branch, make_counter, make_service, make_staff


@pytest.fixture
def api(client, setup):
    """A client that sends JSON in alice's session (events are recorded as hers)."""
    login(client)
    headers = {}

    class Api:
        def get(self, path, **kw):
            return client.get(f"/api/v1{path}", headers=headers, **kw)

        def post(self, path, json=None, **kw):
            return client.post(f"/api/v1{path}", json={} if json is None else json, headers=headers, **kw)

    return Api()


def test_health_is_public_and_reports_the_database(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["database"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/queues"), ("get", "/tickets"), ("get", "/tickets/1"), ("get", "/counters"),
        ("post", "/tickets"), ("post", "/counters/1/call-next"), ("post", "/counters/1/open"),
        ("post", "/tickets/1/complete"),
    ],
)
def test_anonymous_callers_get_401_json(client, setup, method, path):
    response = getattr(client, method)(f"/api/v1{path}", json={} if method == "post" else None)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


def test_unknown_token_is_401(client, setup):
    response = client.get("/api/v1/queues", headers={"Authorization": "Bearer seed_not-a-token"})
    assert response.status_code == 401 and response.json["error"] == "invalid_token"


def test_full_ticket_journey_through_the_api(api, setup):
    _, _, (c1, _c2), _ = setup
    issued = api.post("/tickets", {"service": "a"})
    assert issued.status_code == 201
    ticket = issued.json["ticket"]
    assert (ticket["number"], ticket["status"], ticket["position"], ticket["service"]) == ("A001", "waiting", 1, "A")
    assert ticket["estimated_wait_minutes"] == 0

    second = api.post("/tickets", {"service": "A"}).json["ticket"]
    assert second["position"] == 2 and second["estimated_wait_minutes"] == 5

    called = api.post(f"/counters/{c1.id}/call-next")
    assert called.status_code == 200
    assert called.json["ticket"]["number"] == "A001" and called.json["ticket"]["counter"] == "1"

    tid = ticket["id"]
    assert api.post(f"/tickets/{tid}/recall").json["ticket"]["recall_count"] == 1
    assert api.post(f"/tickets/{tid}/start").json["ticket"]["status"] == "serving"
    done = api.post(f"/tickets/{tid}/complete")
    assert done.status_code == 200 and done.json["ticket"]["status"] == "completed"

    detail = api.get(f"/tickets/{tid}").json["ticket"]
    assert [e["kind"] for e in detail["events"]] == ["issued", "called", "recalled", "started", "completed"]
    assert {e["staff"] for e in detail["events"]} == {"alice"}
    assert api.get(f"/tickets/{second['id']}").json["ticket"]["position"] == 1


def test_no_show_hold_unhold_transfer_late_cancel(api, setup):
    _, _, (c1, _c2), _ = setup
    first = api.post("/tickets", {"service": "A"}).json["ticket"]["id"]
    second = api.post("/tickets", {"service": "A"}).json["ticket"]["id"]
    api.post(f"/counters/{c1.id}/call-next")
    assert api.post(f"/tickets/{first}/no-show").json["ticket"]["status"] == "no_show"
    assert api.post(f"/tickets/{second}/hold").json["ticket"]["status"] == "held"
    assert api.post(f"/tickets/{second}/unhold").json["ticket"]["status"] == "waiting"
    moved = api.post(f"/tickets/{second}/transfer", {"service": "B"}).json["ticket"]
    assert (moved["service"], moved["number"]) == ("B", "A002")
    late = api.post(f"/tickets/{second}/late", {"minutes": 20}).json["ticket"]
    assert late["late_until"] is not None
    assert api.post(f"/tickets/{second}/cancel", {"reason": "went home"}).json["ticket"]["status"] == "cancelled"


def test_call_next_on_an_empty_queue(api, setup):
    _, _, (c1, _c2), _ = setup
    response = api.post(f"/counters/{c1.id}/call-next")
    assert response.status_code == 200 and response.json["ticket"] is None


def test_queues_snapshot(api, setup):
    _, _, (c1, _c2), _ = setup
    api.post(f"/counters/{c1.id}/open")
    for code in "AAB":
        api.post("/tickets", {"service": code})
    api.post(f"/counters/{c1.id}/call-next")
    data = api.get("/queues").json
    services = {s["code"]: s for s in data["services"]}
    assert services["A"]["waiting_count"] == 1 and services["B"]["waiting_count"] == 1
    assert [t["number"] for t in services["A"]["waiting"]] == ["A002"]
    counters = {c["name"]: c for c in data["counters"]}
    assert counters["1"]["ticket"]["number"] == "A001" and counters["1"]["is_open"]
    assert counters["2"]["ticket"] is None


def test_queues_answer_a_page_of_each_queue_with_whole_counts(api, setup):
    for _ in range(7):
        api.post("/tickets", {"service": "A"})
    first = {s["code"]: s for s in api.get("/queues?first=3").json["services"]}
    assert first["A"]["waiting_count"] == 7 and first["A"]["more"] is True
    assert [t["number"] for t in first["A"]["waiting"]] == ["A001", "A002", "A003"]
    last = {s["code"]: s for s in api.get("/queues?first=3&after=6").json["services"]}
    assert [(t["number"], t["position"]) for t in last["A"]["waiting"]] == [("A007", 7)] and last["A"]["more"] is False
    assert len(api.get("/queues").json["services"][0]["waiting"]) == 7  # a page holds 50 unless asked otherwise
    assert api.get("/queues?first=501").status_code == 400


def test_ticket_list_filters(api, setup):
    for code in "AAB":
        api.post("/tickets", {"service": code})
    assert len(api.get("/tickets").json["tickets"]) == 3
    assert [t["number"] for t in api.get("/tickets?service=B").json["tickets"]] == ["B001"]
    assert api.get("/tickets?status=completed").json["tickets"] == []
    bad = api.get("/tickets?status=<script>")
    assert bad.status_code == 400 and bad.json["error"] == "invalid"


@pytest.mark.parametrize(
    ("path", "payload", "status", "error"),
    [
        ("/tickets", {"service": "Q"}, 404, "not_found"),
        ("/tickets", {}, 400, "invalid"),
        ("/tickets", {"service": "A", "priority": "high"}, 400, "invalid"),
        ("/tickets", {"service": "A", "language": "xx"}, 400, "invalid"),
        ("/tickets", {"service": ["A"]}, 400, "invalid"),
        ("/tickets", ["A"], 400, "invalid"),
        ("/tickets/999/complete", {}, 404, "not_found"),
        ("/tickets/1/fly", {}, 404, "not_found"),
        ("/tickets/1/complete", {}, 409, "invalid_transition"),
        ("/tickets/1/late", {"minutes": 999}, 400, "invalid"),
        ("/tickets/1/transfer", {"service": "Z"}, 404, "not_found"),
        ("/tickets/1/cancel", {"reason": "x" * 201}, 400, "invalid"),
        ("/counters/999/call-next", {}, 404, "not_found"),
    ],
)
def test_refusals_are_json_and_change_nothing(api, setup, path, payload, status, error):
    api.post("/tickets", {"service": "A"})  # ticket 1, waiting
    before = api.get("/tickets/1").json["ticket"]
    response = api.post(path, payload)
    assert response.status_code == status, response.json
    assert response.json["error"] == error and response.json["message"]
    assert api.get("/tickets/1").json["ticket"] == before
    assert len(api.get("/tickets").json["tickets"]) == 1


def test_busy_counter_refusal_names_the_ticket(api, setup):
    _, _, (c1, _c2), _ = setup
    api.post("/tickets", {"service": "A"})
    api.post("/tickets", {"service": "A"})
    api.post(f"/counters/{c1.id}/call-next")
    response = api.post(f"/counters/{c1.id}/call-next")
    assert response.status_code == 409 and "A001" in response.json["message"]


def test_non_json_posts_are_refused(client, setup):
    alice = bearer("alice")
    response = client.post("/api/v1/tickets", data="service=A", headers=alice,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    broken = client.post("/api/v1/tickets", data="{not json", headers=alice, content_type="application/json")
    assert broken.status_code == 400
    assert client.get("/api/v1/tickets", headers=alice).json["tickets"] == []


def test_staff_see_only_their_branch(client, setup):
    other = make_branch("Other")
    service = make_service(other, "A")
    make_counter(other, "1", [service])
    make_staff("bob", branch=other)
    db.session.commit()
    alice, bob = bearer("alice"), bearer("bob")
    ticket = client.post("/api/v1/tickets", json={"service": "A"}, headers=alice).json["ticket"]
    assert client.get(f"/api/v1/tickets/{ticket['id']}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket['id']}/cancel", json={}, headers=bob).status_code == 404
    assert client.get("/api/v1/tickets", headers=bob).json["tickets"] == []
    assert client.get(f"/api/v1/queues?branch={setup[0].id}", headers=bob).status_code == 404


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"] == "not_found"
