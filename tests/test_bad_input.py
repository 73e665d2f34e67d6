"""Bad input: every malformed request to the JSON API gets a 4xx JSON error that names the field
and the reason, and changes nothing. First a table of the cases once known to end in a 500; then
generated bodies and query strings for every JSON endpoint in app.url_map, so an endpoint added
later is fuzzed without editing this file (the walker fails on a URL argument it has no value for)."""
import hashlib
import json
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from core import engine
from core.extensions import db, limiter
from core.models import Appointment, Closure
from messaging.models import OutboxMessage

from .constants import START
from .helpers import bearer, make_staff

HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
SLOT = (START + timedelta(days=1, hours=1)).isoformat()  # Tuesday 10:00 UTC, a free slot
PHONE = "+447400123456"


@pytest.fixture
def world(app, client, setup, vm, monkeypatch):
    """The setup's branch open on weekdays, a ticket, an appointment, a sent text, an admin's
    token; the kiosk limit off (hundreds of check-ins), the virtual modem on."""
    app.config["RATELIMIT_ENABLED"] = False
    monkeypatch.setattr(limiter, "enabled", False)  # read at init_app; the config alone is too late
    app.extensions["seed.virtual_modem"] = vm
    branch, services, counters, _alice = setup
    branch.opening_hours = HOURS
    make_staff("root", role="admin")
    db.session.commit()
    ticket = engine.issue_ticket(services[0].id)
    appointment = Appointment(branch_id=branch.id, service_id=services[0].id, starts_at=START + timedelta(days=2),
                              created_at=START)
    sent = OutboxMessage(branch_id=branch.id, to=PHONE, body="Test Branch: hello", kind="welcome", status="sent",
                         send_after=START, created_at=START, sent_at=START)
    closure = Closure(branch_id=branch.id, first_day=START.date() + timedelta(days=60),
                      last_day=START.date() + timedelta(days=61), message="Holiday", created_at=START)
    db.session.add_all([appointment, sent, closure])
    db.session.commit()
    headers = bearer("root")
    client.get("/api/v1/queues", headers=headers)  # the token's first use is written once: not a change to catch later
    return {"headers": headers, "ticket_id": ticket.id, "counter_id": counters[0].id,
            "appointment_id": appointment.id, "message_id": sent.id, "closure_id": closure.id,
            "service_id": services[0].id, "user_id": _alice.id}


def fingerprint() -> str:
    """Row counts and a hash of every row of every table, as committed."""
    digest = hashlib.sha256()
    with db.engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            rows = sorted(repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"')))
            digest.update(f"{table}:{len(rows)}:{rows}".encode("utf-8", "backslashreplace"))
    return digest.hexdigest()


def send(client, world, method, path, body=None, *, raw=None, public=False):
    """One request as production runs it: afterwards the session is thrown away."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {} if public else world["headers"]
    try:
        return client.open(path, method=method, data=data, headers=headers, content_type="application/json")
    finally:
        db.session.rollback()


def assert_refused(response, before, field=None):
    """A 4xx in the API's JSON shape, naming `field`, and the database as it was."""
    payload = response.get_json(silent=True)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:400])
    assert isinstance(payload, dict) and payload.get("error") and payload.get("message"), response.text[:400]
    assert "detail" in payload, payload
    if response.status_code == 400:
        assert isinstance(payload["detail"], dict) and payload["detail"], payload
    if field is not None:
        assert field in (payload["detail"] or {}), payload
    assert fingerprint() == before, f"a refused request changed the database: {payload}"


# --- (1) the known cases ----------------------------------------------------------------------

DEEP = b'{"service": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
KNOWN = [
    # (method, path, body or raw bytes, expected status, field named in detail)
    ("POST", "/api/v1/tickets", {"service": "A", "branch": 2**63}, 400, "branch"),
    ("POST", "/api/v1/tickets", {"service": "A", "branch": 99999999999999999999}, 400, "branch"),
    ("POST", "/api/v1/tickets", {"service": "A", "branch": True}, 400, "branch"),
    ("POST", "/api/v1/tickets", {"service": "A", "priority": 2**64}, 400, "priority"),
    ("POST", "/api/v1/tickets", {"service": "A\x1b"}, 400, "service"),
    ("POST", "/api/v1/tickets", {"service": "A\x00"}, 400, "service"),
    ("POST", "/api/v1/tickets", {"service": "\ud800"}, 400, "service"),
    ("POST", "/api/v1/tickets", DEEP, 400, "body"),
    ("POST", "/api/v1/tickets", b"[" * 100_000, 400, "body"),
    ("POST", "/api/v1/tickets", b'{"service": "A", "priority": NaN}', 400, "body"),
    ("POST", "/api/v1/tickets", b'{"service": "A", "priority": 1e999}', 400, "body"),
    ("POST", "/api/v1/tickets", b'{"priority": ' + b"9" * 5000 + b"}", 400, "body"),
    ("POST", "/api/v1/tickets", b"\xff\xfe{}", 400, "body"),
    ("POST", "/api/v1/tickets", [1, 2], 400, "body"),
    ("POST", "/api/v1/tickets/{ticket_id}/late", {"minutes": 2**63}, 400, "minutes"),
    ("POST", "/api/v1/tickets/{ticket_id}/cancel", {"reason": "gone\x1b[2J"}, 400, "reason"),
    ("POST", "/api/v1/tickets/{ticket_id}/transfer", {"service": 7}, 400, "service"),
    ("GET", "/api/v1/tickets/99999999999999999999", None, 404, None),
    ("POST", "/api/v1/tickets/99999999999999999999/complete", None, 404, None),
    ("POST", "/api/v1/counters/99999999999999999999/open", None, 404, None),
    ("POST", "/api/v1/counters/2147483648/open", None, 404, None),  # past PostgreSQL's INTEGER
    ("GET", "/api/v1/queues?branch=99999999999999999999", None, 400, "branch"),
    ("GET", "/api/v1/tickets?branch=abc", None, 400, "branch"),
    ("GET", "/api/v1/tickets?service=A%00", None, 400, "service"),
    ("GET", "/api/v1/counters?branch=%D9%A1", None, 400, "branch"),
    ("GET", "/api/v1/outbox?before=99999999999999999999", None, 400, "before"),
    ("GET", "/api/v1/outbox?after=-1", None, 400, "after"),
    ("GET", "/api/v1/appointments?date=9999-12-31", None, 400, "date"),
    ("GET", "/api/v1/appointments?date=0001-01-01", None, 400, "date"),
    ("GET", "/api/v1/appointments?date=2026-W10-2", None, 400, "date"),
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": "9999-12-31T23:59:59"}, 400, "starts_at"),
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": "0001-01-01T00:00:00+14:00"}, 400, "starts_at"),
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": "20260303T100000"}, 400, "starts_at"),
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": SLOT, "branch": 2**63}, 400, "branch"),
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": SLOT, "name": "Nino\x1b"}, 400, "name"),
    # refused after the customer was once remembered: a name was saved for a booking that failed
    ("POST", "/api/v1/appointments", {"service": "A", "starts_at": "2026-03-03T10:07:00+00:00",
                                      "phone": PHONE, "name": "Nino"}, 400, "starts_at"),
    ("POST", "/api/v1/appointments/import", {"csv": "name,phone,service,start\n", "branch": 2**64}, 400, "branch"),
    ("POST", "/api/v1/appointments/import", {"csv": ["a"]}, 400, "csv"),
    ("POST", "/api/v1/appointments/import", {"csv": "name,phone,service,start\n,,A,9999-12-31 23:50"}, 400, "rows"),
    ("POST", "/api/v1/corrections/preview", {"kind": "welcome", "from": "9999-12-31T00:00:00+00:00",
                                             "to": "9999-12-31T23:00:00+00:00"}, 400, "from"),
    ("POST", "/api/v1/corrections", {"kind": "welcome\x1b", "from": "2026-03-01T00:00:00+00:00",
                                     "to": "2026-03-03T00:00:00+00:00", "body": "sorry"}, 400, "kind"),
    ("POST", "/api/v1/corrections", {"kind": "welcome", "from": "2026-03-01T00:00:00+00:00",
                                     "to": "2026-03-03T00:00:00+00:00", "body": "sorry\x07"}, 400, "body"),
    ("POST", "/api/v1/templates/preview", {"body": "{branch} hi", "branch": 10**30}, 400, "branch"),
    ("PUT", "/api/v1/templates/welcome/en", {"body": "{branch} \x1b[31mred"}, 400, "body"),
    ("DELETE", "/api/v1/templates/welcome/en?branch=1e3", None, 400, "branch"),
    ("POST", "/api/v1/templates/test", {"body": "{branch} hi", "phone": 2**70}, 400, "phone"),
]
PUBLIC_KNOWN = [
    ("POST", "/api/v1/checkins", {"service": "A", "branch": 2**63}, 400, "branch"),
    ("POST", "/api/v1/checkins", {"service": "A", "name": "Nino\x1b"}, 400, "name"),
    ("POST", "/api/v1/checkins", {"service": "A", "phone": "+44\x00"}, 400, "phone"),
    ("POST", "/api/v1/checkins", {"booking_code": "ABC123", "branch": 2**64}, 400, "branch"),
    ("POST", "/api/v1/checkins", DEEP, 400, "body"),
    ("POST", "/api/v1/phone-check", {"phone": PHONE, "branch": 99999999999999999999}, 400, "branch"),
    ("POST", "/api/v1/phone-check", {"phone": PHONE, "branch": -1}, 400, "branch"),
    ("POST", "/api/v1/phone-check", b'{"phone": "\\ud800"}', 400, "phone"),
    ("POST", "/api/v1/phone-check", b"null", 400, "body"),
    ("POST", "/api/v1/virtual-phone/send", [PHONE, "hi"], 400, "body"),
    ("POST", "/api/v1/virtual-phone/send", {"from": PHONE, "text": "hi\x1b[2J"}, 400, "text"),
]


def _case_id(case) -> str:
    method, path, body = case[:3]
    shown = body[:24].decode("latin-1") if isinstance(body, bytes) else json.dumps(body)[:60]
    return f"{method} {path} {shown}"


@pytest.mark.parametrize(("method", "path", "body", "status", "field", "public"),
                         [(*case, False) for case in KNOWN] + [(*case, True) for case in PUBLIC_KNOWN],
                         ids=[_case_id(case) for case in KNOWN + PUBLIC_KNOWN])
def test_known_bad_requests(client, world, method, path, body, status, field, public):
    before = fingerprint()
    raw = body if isinstance(body, bytes) else None
    response = send(client, world, method, path.format(**world), None if raw else body, raw=raw, public=public)
    assert response.status_code == status, (response.status_code, response.text[:400])
    assert_refused(response, before, field)


def test_a_status_token_that_cannot_be_one_is_not_looked_up(client, world):
    before = fingerprint()
    assert client.get("/t/abc%00def.json").status_code == 404  # PostgreSQL refuses a NUL in a query
    assert client.get("/t/" + "a" * 65 + ".json").status_code == 404
    assert fingerprint() == before


def test_good_requests_still_pass(client, world):
    """The checks refuse the bad, not the ordinary."""
    booked = send(client, world, "POST", "/api/v1/appointments",
                  {"service": "a", "starts_at": SLOT, "phone": "07400 123456", "name": "Nino Beridze"})
    assert booked.status_code == 201, booked.json
    late = send(client, world, "POST", f"/api/v1/tickets/{world['ticket_id']}/late", {"minutes": 10})
    assert late.status_code == 200, late.json
    listed = send(client, world, "GET", "/api/v1/appointments?date=2026-03-03&branch=1")
    assert [a["starts_at"] for a in listed.json["appointments"]] == ["2026-03-03T10:00:00+00:00"]
    csv = f"name,phone,service,start\r\nNino,{PHONE},A,2026-03-04 10:00\r\n"
    assert send(client, world, "POST", "/api/v1/appointments/import", {"csv": csv}).status_code == 201
    assert send(client, world, "GET", "/api/v1/outbox?limit=5&before=2147483647").status_code == 200


# --- (2) every JSON endpoint, generated input ---------------------------------------------------

EXAMPLES = 40  # per endpoint and method: the whole walk stays well under a minute
NASTY_NUMBERS = [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**20, 10**400]
NASTY_TEXTS = ["", " ", "\x1b[31m", "a\x00b", "\ud800", "\u202e", "\u2028", "\n\r\t", "😀", "NaN", "Infinity", "-0",
               "1e999", "99999999999999999999", "9999-12-31", "0001-01-01", "9999-12-31T23:59:59+14:00",
               "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59", "2026-02-30T10:00:00", "2026-03-03T10:00:00+23:59",
               "x" * 5000, "{branch}\x1b", "{branch} {nope}", "'; DROP TABLE ticket; --", "%s%n", "٣"]
RAW_BODIES = [b"", b"null", b"[]", b'"A"', b"1e999", b"\xff\xfe", b"\xef\xbb\xbf{}", b'{"a": NaN}', b"{", DEEP,
              b"[" * 100_000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b'{"a": "' + b"x" * 2_000_000 + b'"}']
NASTY_DATES = ["9999-12-31", "0001-01-01", "9999-12-31T23:59:59", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00",
               "0001-01-01T00:00:00-12:00", "2026-02-30T10:00:00", "2026-03-03T10:00:00+23:59", "2026-03-03T24:00:00",
               "20260303T100000", "2026-W10-2", "2026-03-03T10:00:00.1234567", "٢٠٢٦-03-03", "2026-03-03T10:00:00Z"]
DATE_FIELDS = {"starts_at", "from", "to", "date"}
NUMBER_FIELDS = {"branch", "priority", "minutes", "before", "after", "limit"}
VALID = {
    "service": ["A", "b"], "branch": [1], "language": ["en", "ka"], "priority": [0, 5], "phone": [PHONE],
    "name": ["Nino"], "sms_consent": [True, False], "starts_at": [SLOT, "2026-03-03T11:00:00"],
    "csv": [f"name,phone,service,start\nNino,{PHONE},A,2026-03-03 10:30\n",
            "name,phone,service,start\n,,A,9999-12-31 23:50"],
    "body": ["{branch} hello {name}"],
    "from": ["2026-03-01T00:00:00+00:00"], "to": ["2026-03-03T00:00:00+00:00"], "kind": ["welcome"],
    "reason": ["moved away"], "minutes": [10], "booking_code": ["ABC123"], "text": ["hello"],
    "status": ["waiting", "queued"], "date": ["2026-03-03"], "before": ["5"], "after": ["1"], "limit": ["10"],
    "lane": ["call"], "today": ["1"], "lang": ["ka"], "number": [PHONE],
}
FIELDS = {
    "api.issue": ("branch", "service", "language", "priority"),
    "api.ticket_action": ("reason", "minutes", "service"),
    "api.book_appointment": ("branch", "service", "starts_at", "phone", "name", "sms_consent", "language"),
    "api.import_appointments": ("csv", "branch"),
    "api.preview_template": ("branch", "body"), "api.save_template": ("branch", "body"),
    "api.test_template": ("branch", "body", "phone"),
    "api.preview_correction": ("branch", "from", "to", "kind"),
    "api.send_correction": ("branch", "from", "to", "kind", "body"),
    "kiosk_api.checkins": ("service", "phone", "language", "sms_consent", "name", "branch", "booking_code"),
    "kiosk_api.phone_check": ("phone", "branch", "language"),
    "virtual_phone_api.send": ("from", "text"),
}
QUERY = ["branch", "status", "service", "date", "before", "after", "limit", "lane", "today", "lang", "number"]
ANY_FIELDS = tuple(sorted({field for fields in FIELDS.values() for field in fields}))  # for endpoints added later

KEYS = st.sampled_from(["a", "service", "id", "", "\x1b", "😀"])
nasty = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                  st.sampled_from(NASTY_NUMBERS), st.sampled_from(NASTY_TEXTS))
json_values = st.recursive(nasty, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(KEYS, inner, max_size=3), max_leaves=6)
ABSENT = object()


def good(field):
    known = st.sampled_from(VALID.get(field, [None]))
    return st.one_of(known, known, known, st.just(ABSENT))


def bad(field):
    """Any JSON value, but most often the kind that once broke a field like this one."""
    typed = st.sampled_from(NASTY_DATES if field in DATE_FIELDS else
                            NASTY_NUMBERS + [True, 1.5, -0.0, 1e308, "7"] if field in NUMBER_FIELDS else NASTY_TEXTS)
    return st.one_of(typed, typed, st.sampled_from(NASTY_NUMBERS), st.sampled_from(NASTY_TEXTS), json_values)


def one_or_two_bad(fields, good_value, bad_value):
    """Every field good (or absent) but one or two: a bad value then reaches as deep as it can."""
    base = st.fixed_dictionaries({field: good_value(field) for field in fields})
    spoiled = st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries({field: bad_value(field) for field in chosen}))
    merged = st.tuples(base, spoiled).map(lambda pair: {**pair[0], **pair[1]})
    return merged.map(lambda body: {key: value for key, value in body.items() if value is not ABSENT})


def bodies(endpoint):
    objects = one_or_two_bad(FIELDS.get(endpoint, ANY_FIELDS), good, bad).map(lambda body: json.dumps(body).encode())
    # json.dumps writes NaN and Infinity as they come: the invalid JSON a careless client sends
    others = st.one_of(st.sampled_from(RAW_BODIES), json_values.map(lambda value: json.dumps(value).encode()))
    return st.one_of(objects, objects, objects, objects, others)


def query_strings():
    args = one_or_two_bad(QUERY, lambda field: good(field).map(lambda v: v if v is ABSENT else str(v)),
                          lambda field: st.one_of(bad(field).map(str), st.text(max_size=10)))
    return args.map(lambda chosen: urlencode(chosen, encoding="utf-8", errors="surrogatepass"))


def path_values(rule, world):
    """A strategy per URL argument: the real row's id, or one no table holds or no column can."""
    ids = lambda real: st.sampled_from([real] * 4 + [0, 2**31, 2**63, 99999999999999999999])  # noqa: E731
    per_argument = {
        "ticket_id": ids(world["ticket_id"]), "counter_id": ids(world["counter_id"]),
        "appointment_id": ids(world["appointment_id"]), "message_id": ids(world["message_id"]),
        "closure_id": ids(world["closure_id"]), "service_id": ids(world["service_id"]),
        "user_id": ids(world["user_id"]), "filename": st.sampled_from(["branch-1-00000000.png", "../x", "x" * 300]),
        "branch_id": ids(1), "token_id": ids(1), "kind": st.sampled_from(["welcome", "called", "nope", "x" * 300]),
        "language": st.sampled_from(["en", "ka", "xx"]),
        "action": st.sampled_from(["recall", "start", "complete", "no-show", "hold", "unhold", "cancel", "late",
                                   "transfer", "fly", "%1b"]),
    }
    for name, converter in rule._converters.items():
        if hasattr(converter, "items"):  # <any(...)>: only its own words reach the view
            per_argument[name] = st.sampled_from(sorted(converter.items))
    missing = set(rule.arguments) - set(per_argument)
    assert not missing, f"{rule.rule}: no value for {sorted(missing)}; add one in tests/test_bad_input.py"
    return st.fixed_dictionaries({name: per_argument[name] for name in rule.arguments})


def build_path(rule, values) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda match: str(values[match.group(1)]), rule.rule)


def json_endpoints(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        for method in sorted(rule.methods & {"GET", "POST", "PUT", "DELETE"}):
            if rule.rule.startswith("/api/"):
                yield rule, method


def test_every_json_endpoint_refuses_generated_input_cleanly(app, client, world):
    """Never a 5xx; a 4xx in the API's JSON shape that leaves every table as it was."""
    walked = []
    for rule, method in json_endpoints(app):
        walked.append(f"{method} {rule.rule}")
        reads = method in ("GET", "DELETE")

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(values=path_values(rule, world), body=bodies(rule.endpoint), query=query_strings())
        def one(values, body, query):
            path = build_path(rule, values) + (f"?{query}" if reads and query else "")
            before = fingerprint()
            response = send(client, world, method, path, raw=None if reads else body)
            assert response.status_code < 500, (method, path, body[:300], response.text[:400])
            if response.status_code >= 400:
                assert_refused(response, before)

        one()
    assert "POST /api/v1/checkins" in walked and "POST /api/v1/virtual-phone/send" in walked, walked
