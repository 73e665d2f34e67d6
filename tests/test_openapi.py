"""The API's description (issue 14, "Seen from outside"): /api/v1/openapi.json is made from the
declarations the endpoints read their requests with (core/openapi.py), so every route of the API
has one; schemathesis generates requests from it for every operation, anonymously and as an
administrator, and no answer is a 5xx, has a status, a content type or a body the description
does not give."""
import json
import shutil

import pytest
import schemathesis
from flask import g
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from core import openapi
from core.extensions import db

from .conftest import build_app, database_url
from .helpers import login
from .test_bad_input import fingerprint, world  # noqa: F401  (the fixture: a branch with one of everything)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
KNOWN_IDS = {"ticket_id", "counter_id", "appointment_id", "message_id", "closure_id", "service_id", "user_id",
             "branch_id"}


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, tmp_path, clock, migrated_sqlite):
    """(This module's tests on both engines.)"""
    if request.param == "sqlite":
        shutil.copyfile(migrated_sqlite, tmp_path / "seed.db")
    app = build_app(database_url(request, tmp_path), clock, tmp_path)
    app.config["SEED_TEST_ENGINE"] = request.param
    with app.app_context():
        if request.param == "postgresql":
            db.drop_all()
            db.create_all()
        yield app
        db.session.remove()
        if request.param == "postgresql":
            db.drop_all()
        db.engine.dispose()


def test_every_route_of_the_api_is_declared(app):
    assert openapi.undocumented(app) == []


def test_the_description_is_served_to_anyone_and_names_every_route(app, client):
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    document = answer.get_json()
    assert document["openapi"].startswith("3.1") and document["info"]["title"] == "Seed API"
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")}
    declared = {path for path in document["paths"]}
    as_paths = {openapi._path(rule)[0] for rule in app.url_map.iter_rules() if rule.rule in routes}
    assert declared == as_paths
    ids = [op["operationId"] for methods in document["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))
    # Every reference resolves.
    text = json.dumps(document)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in document["components"]["schemas"], name


def test_what_the_description_says_is_what_the_server_takes(client, world):  # noqa: F811
    """A declared limit is the server's limit; an undeclared field never reaches a view."""
    headers = world["headers"]
    document = client.get("/api/v1/openapi.json").get_json()
    issue = document["paths"]["/api/v1/tickets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert issue["required"] == ["service"] and issue["additionalProperties"] is False
    assert issue["properties"]["priority"]["minimum"] == -100 and issue["properties"]["priority"]["maximum"] == 100
    before = fingerprint()
    refused = client.post("/api/v1/tickets", json={"service": "A", "priority": 101}, headers=headers)
    assert refused.status_code == 400 and refused.get_json()["detail"] == {"priority": "out of range"}
    unknown = client.post("/api/v1/tickets", json={"service": "A", "vip": True}, headers=headers)
    assert unknown.status_code == 400 and unknown.get_json()["detail"] == {"vip": "unknown"}
    query = client.get("/api/v1/tickets?colour=red", headers=headers)
    assert query.status_code == 400 and query.get_json()["detail"] == {"colour": "unknown"}
    db.session.rollback()
    assert fingerprint() == before
    accepted = client.post("/api/v1/tickets", json={"service": "A", "priority": 100}, headers=headers)
    assert accepted.status_code == 201 and accepted.get_json()["ticket"]["priority"] == 100


def test_the_reference_page_shows_every_operation(app, client, setup):
    assert client.get("/staff/api").status_code == 302  # staff only: it shows the whole admin surface
    login(client, "alice")
    for language in ("en", "ja", "ka"):
        page = client.get(f"/staff/api?lang={language}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'lang="{language}"' in html
        document = client.get("/api/v1/openapi.json").get_json()
        for path, methods in document["paths"].items():
            for method in methods:
                assert f"{method.upper()} {path}" in html, (method, path)
    japanese = client.get("/staff/api?lang=ja").get_data(as_text=True)
    assert "API リファレンス" in japanese or "APIリファレンス" in japanese


def fuzz(app, headers, known, examples):
    """Every operation, `examples` generated requests each; the failures, by operation."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), real=st.booleans())
        def run(case, real):
            if real:  # most generated ids name nothing: half the requests are about things that exist
                for name in case.path_parameters or {}:
                    if name in known:
                        case.path_parameters[name] = known[name]
            g.pop("_login_user", None)  # the test's app context outlives each request (tests/conftest.py)
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            finally:
                db.session.rollback()

        try:
            run()
        except Exception as error:  # noqa: BLE001  (gathered: one report for the whole API)
            failures[operation.label] = str(error)[:1500]
    return failures


def _known(world):  # noqa: F811
    ids = {name: world[name] for name in KNOWN_IDS if name in world}
    ids.setdefault("branch_id", 1)
    return ids


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_generated_requests_find_no_server_error_and_no_answer_off_the_description(app, world, who):  # noqa: F811
    headers = world["headers"] if who == "admin" else {}
    examples = 30 if app.config["SEED_TEST_ENGINE"] == "sqlite" else 10
    failures = fuzz(app, headers, _known(world), examples=examples)
    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
