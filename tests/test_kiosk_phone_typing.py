"""The number shown back while it is typed (phone-check with "typing": true): the branch's national
format as it grows, never an error for a half-typed number, and the same text the next screen shows
once the number is whole. The kiosk in Chromium: tests/test_kiosk_layout.py."""
import pytest

from core.extensions import db

from .helpers import make_branch, make_service


@pytest.fixture
def branches(setup):
    """The setup's branch (GB) and a Japanese and a Georgian one, each with a service."""
    tokyo, tbilisi = make_branch("Tokyo", "Asia/Tokyo", "JP"), make_branch("Tbilisi", "Asia/Tbilisi", "GE")
    for branch in (tokyo, tbilisi):
        make_service(branch)
    db.session.commit()
    return {"GB": setup[0].id, "JP": tokyo.id, "GE": tbilisi.id}


def typing(client, branch, phone):
    response = client.post("/api/v1/phone-check", json={"phone": phone, "branch": branch, "typing": True})
    assert response.status_code == 200, response.json
    assert set(response.json) == {"display"}
    return response.json["display"]


@pytest.mark.parametrize(("country", "keys", "shown"), [
    ("GB", "07700900123", ["0", "07", "077", "0770", "07700", "07700 9", "07700 90", "07700 900", "07700 9001",
                           "07700 90012", "07700 900123"]),
    ("JP", "09012345678", ["0", "09", "090", "090-1", "090-12", "090-123", "090-1234", "090-1234-5", "090-1234-56",
                           "090-1234-567", "090-1234-5678"]),
    ("GE", "555123456", ["5", "55", "555", "555 1", "555 12", "555 12 3", "555 12 34", "555 12 34 5",
                         "555 12 34 56"]),
])
def test_each_key_shows_the_number_so_far_in_the_national_format(client, branches, country, keys, shown):
    assert [typing(client, branches[country], keys[:n]) for n in range(1, len(keys) + 1)] == shown


def test_a_whole_number_reads_as_the_next_screen_will_show_it(client, branches):
    for country, phone in (("GB", "+44 7400 123456"), ("JP", "+81 90 1234 5678"), ("GB", "+81 90 1234 5678")):
        confirmed = client.post("/api/v1/phone-check", json={"phone": phone, "branch": branches[country]})
        assert confirmed.status_code == 200
        assert typing(client, branches[country], phone) == confirmed.json["display"]
    assert typing(client, branches["GB"], "+44 7400 123456") == "07400 123456"  # at home: national
    assert typing(client, branches["GB"], "+81 90 1234 5678") == "+81 90-1234-5678"  # abroad: international


def test_what_a_keyboard_types_is_read_as_digits(client, branches):
    assert typing(client, branches["JP"], "０９０１２３４５６７８") == "090-1234-5678"  # a Japanese IME's digits
    assert typing(client, branches["GB"], "07700-900 123") == "07700 900123"
    assert typing(client, branches["GB"], " 0 7 7 ") == "077"


@pytest.mark.parametrize("phone", [None, 42, ["07700"], {"a": 1}, "", "   ", "abc", "+", "\u202eー", "9" * 5000])
def test_nothing_typed_or_nothing_readable_is_never_an_error(client, branches, phone):
    shown = typing(client, branches["GB"], phone)
    assert shown in ("", "+") or shown.isdigit()
    assert len(shown) <= 20


def test_without_typing_the_check_still_refuses_half_a_number(client, branches):
    for flag in ({}, {"typing": False}):
        half = client.post("/api/v1/phone-check", json={"phone": "07700 9", "branch": branches["GB"], **flag})
        assert half.status_code == 400 and half.json["detail"] == {"phone": "invalid"}, flag
    # "typing" is true or false (its declaration): anything else is refused by name, never read as typing
    unsure = client.post("/api/v1/phone-check", json={"phone": "07700 9", "branch": branches["GB"], "typing": "yes"})
    assert unsure.status_code == 400 and unsure.json["detail"] == {"typing": "not a boolean"}


def test_an_unknown_branch_is_still_refused(client, branches):
    response = client.post("/api/v1/phone-check", json={"phone": "0", "branch": 999999, "typing": True})
    assert response.status_code == 404
