"""Every character a printed ticket draws has a glyph in the font it is drawn with (issue 16: the
Georgian ticket printed its number as boxes, the bundled Georgian font having no digits, Latin
letters or punctuation). Tickets are checked in through the kiosk API with a file printer, in each
language, for a Georgian, a Japanese and a Latin service, and what was printed is checked glyph by
glyph. A glyph is real when the font draws the character otherwise than the box it draws for code
points no font has (Pillow shows no character map)."""
from __future__ import annotations

import re

import pytest
from escpos.printer import Dummy
from PIL import ImageFont

from core.extensions import db
from hardware import printer, ticket_fonts

from .helpers import make_branch, make_counter, make_service

BRANCH = "Seed Clinic Tbilisi — თბილისის ფილიალი, 東京窓口 (2)"
SERVICES = {
    "A": "მოქალაქეთა მომსახურება: პირადობის მოწმობა და პასპორტი (ახალი განაცხადი)",  # 71 of 80 characters
    "B": "住民票・印鑑登録証明書の発行（マイナンバーカード）",
    "C": "Driver's licence renewal & photo (passport-size), 2nd floor",
}
UNASSIGNED = ("\U0010FFFF", "\u0378")  # assigned to nothing: every font draws .notdef for them


def _drawn(face, character):
    mask = face.getmask(character, mode="L")
    return mask.size, bytes(mask)


def draws(face: ImageFont.FreeTypeFont, character: str) -> bool:
    """`face`, at the size it prints, draws `character` as a glyph of its own and not as .notdef."""
    return all(_drawn(face, character) != _drawn(face, missing) for missing in UNASSIGNED)


def missing_glyphs(placed) -> list[tuple[str, str]]:
    return [(character, face.path.rsplit("/", 1)[-1]) for pieces, _ in placed for piece, face in pieces
            for character in piece if not draws(face, character)]


def printed_text(placed) -> str:
    return "".join(piece for pieces, _ in placed for piece, _ in pieces)


@pytest.fixture
def printed(app, monkeypatch, tmp_path):
    """Check in through the kiosk with a file printer; returns a function that prints one ticket and
    returns (the lines print_ticket drew, the bytes it sent). The lines are read by wrapping the
    real ticket_lines, which still does the work."""
    branch = make_branch("Seed Clinic", timezone="Asia/Tbilisi", country="GE", default_language="ka",
                         languages=["ka", "ja", "en"])
    branch.name = BRANCH  # longer than a texts' sender may be
    services = [make_service(branch, code, name) for code, name in SERVICES.items()]
    make_counter(branch, "1", services, is_open=True)
    db.session.commit()
    out = tmp_path / "printed.bin"
    out.write_bytes(b"")
    app.config["PRINTER"] = {"kind": "file", "path": str(out)}
    seen = []
    real_lines = printer.ticket_lines
    monkeypatch.setattr(printer, "ticket_lines", lambda *args: seen.append(real_lines(*args)) or seen[-1])
    client = app.test_client()

    def print_one(service: str, language: str):
        before = len(out.read_bytes())
        response = client.post("/api/v1/checkins", json={"branch": branch.id, "service": service, "language": language})
        assert response.status_code == 201 and response.json["print"]["status"] == "printed", response.json
        return seen[-1], out.read_bytes()[before:]

    return print_one


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_every_printed_character_of_every_language_has_a_glyph(printed, language):
    everything = set()
    for service, name in SERVICES.items():
        lines, sent = printed(service, language)
        texts = [text for text, _, _ in lines]
        assert BRANCH in texts and name in texts
        assert any(text[:1] == service and text[1:].isdigit() for text in texts)  # the number, e.g. A001
        # the time of check-in in the ticket's language, 24-hour, no ISO date: "Mon 2 Mar 09:30", "3月2日(月) 9:30"
        assert any(re.search(r"\d{1,2}:\d\d$", text) and not re.search(r"\d{4}-\d\d", text) for text in texts)

        assert printer.drawn(lines, language)  # a mixed-script name: no printer code page has it
        image = printer.render_image(lines, language)
        expected = Dummy()
        expected.image(image)
        assert expected.output in sent  # the raster printed is the one checked below

        placed = printer.layout(lines, language)
        shown = printed_text(placed)
        # Nothing dropped or replaced on the way: only the spaces where lines wrap go.
        assert shown.replace(" ", "") == "".join(texts).replace(" ", "")
        assert missing_glyphs(placed) == []
        everything |= set(shown)
    assert {"A", "B", "C", "0", "1", ":", "-", "(", ")", ",", "'", "&"} <= everything  # digits: the number, the date
    assert {"ა", "住", "マ", "D"} <= everything


def test_a_plain_ascii_latin_ticket_still_goes_as_printer_text():
    """The printer's own font has every printable ASCII character: such a ticket is not drawn."""
    lines = [("Riverside Office", 28, True), ("Your ticket", 26, False), ("C001", 96, True)]
    assert not printer.drawn(lines, "en")
    assert printer.drawn(lines, "ka") and printer.drawn([("Café", 28, True)], "en")


def test_the_check_catches_the_old_georgian_only_font():
    """Self-test: the Georgian font as bundled has no digits, Latin letters or punctuation, so a
    ticket drawn with it alone (as before issue 16) fails the check above."""
    georgian = ImageFont.truetype(str(ticket_fonts.FONTS / ticket_fonts.GEORGIAN.format(weight=700)), 96)
    assert draws(georgian, "ა") and draws(georgian, " ")
    assert [c for c in "A0123456789:-(),." if draws(georgian, c)] == []
    old = [(ticket_fonts.runs(text, (georgian,)), (georgian,)) for text in ("A123", "2026-12-03 10:00")]
    assert {character for character, _ in missing_glyphs(old)} == set("A01236:-")
    new = printer.layout([("A123", 96, True), ("2026-12-03 10:00", 24, False)], "ka")
    assert missing_glyphs(new) == []


def test_a_character_no_font_has_prints_in_its_plain_form_when_that_has_glyphs():
    """№ is in neither bundled font; "No" is."""
    placed = printer.layout([("ფილიალი №2", 28, True)], "ka")
    assert printed_text(placed) == "ფილიალი No2" and missing_glyphs(placed) == []
