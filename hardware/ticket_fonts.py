"""The fonts a drawn ticket is printed with. No bundled font has every character a ticket prints:
Noto Sans Georgian, as bundled for the screens, has only Georgian (no digits, Latin letters or
punctuation: the ticket number came out as boxes), and Noto Sans JP has kana, kanji, Latin, digits
and punctuation but no Georgian. So each language has a chain of fonts, and every character is
drawn with the first font of its language's chain that has a glyph for it. Both fonts are the
screens' own (display/static/fonts, SIL Open Font License): the printer adds no file.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

FONTS = Path(__file__).resolve().parent.parent / "display" / "static" / "fonts"
GEORGIAN = "noto-sans-georgian-georgian-{weight}-normal.woff2"
JAPANESE = "noto-sans-jp-japanese-{weight}-normal.woff2"
CHAINS = {"ka": (GEORGIAN, JAPANESE), "ja": (JAPANESE, GEORGIAN)}
DEFAULT_CHAIN = (JAPANESE, GEORGIAN)  # Latin tickets that cannot go as printer text (a Japanese service name)
NOT_A_CHARACTER = "\U0010FFFF"  # never assigned: a font draws its .notdef box for it
PROBE_SIZE = 32
# Spaces, punctuation, symbols and combining marks stay in the font of the text around them when it
# has them, so "ფილიალი 2" does not switch fonts for the space, nor 番号。 for the full stop.
FOLLOWS_NEIGHBOUR = ("Z", "P", "S", "M")


@lru_cache(maxsize=64)
def font(name: str, size: int, bold=False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / name.format(weight=700 if bold else 400)), size)


def chain(language: str, size: int, bold=False) -> tuple[ImageFont.FreeTypeFont, ...]:
    """The fonts for `language`, most preferred first."""
    return tuple(font(name, size, bold) for name in CHAINS.get(language, DEFAULT_CHAIN))


@lru_cache(maxsize=16)
def _probe(path: str):
    """One small instance of a font file, and the .notdef box it draws for a character it lacks."""
    probe = ImageFont.truetype(path, PROBE_SIZE, layout_engine=ImageFont.Layout.BASIC)
    return probe, _drawn(probe, NOT_A_CHARACTER)


def _drawn(probe, character: str) -> tuple:
    mask = probe.getmask(character, mode="1")
    return mask.size, bytes(mask)


@lru_cache(maxsize=8192)
def _has_glyph(path: str, character: str) -> bool:
    probe, missing = _probe(path)
    return _drawn(probe, character) != missing


def has_glyph(face: ImageFont.FreeTypeFont, character: str) -> bool:
    """Whether `face` draws `character` as itself rather than as its .notdef box. Pillow shows no
    character map, so the glyph is compared with the one drawn for a code point no font has."""
    return _has_glyph(face.path, character)


def _drawable(text: str, fonts) -> str:
    """`text` with each character that no font has in its compatibility form, when the fonts have
    that (№ becomes No); any other stays as it is, and prints as a box."""
    def has(character):
        return any(has_glyph(face, character) for face in fonts)

    def plain(character):
        if has(character):
            return character
        simpler = unicodedata.normalize("NFKC", character)
        return simpler if simpler and all(has(part) for part in simpler) else character

    return "".join(plain(character) for character in text)


def runs(text: str, fonts: tuple[ImageFont.FreeTypeFont, ...]) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """`text` split into (piece, font) runs, each character in the first font of `fonts` that has it.
    A character no font has is left to the first font (the test of every language's ticket fails then)."""
    pieces: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for character in _drawable(text, fonts):
        current = pieces[-1][1] if pieces else None
        if current is not None and unicodedata.category(character)[0] in FOLLOWS_NEIGHBOUR and has_glyph(current, character):
            face = current
        else:
            face = next((f for f in fonts if has_glyph(f, character)), fonts[0])
        if face is current:
            pieces[-1] = (pieces[-1][0] + character, face)
        else:
            pieces.append((character, face))
    return pieces


def width(text: str, fonts: tuple[ImageFont.FreeTypeFont, ...]) -> float:
    return sum(face.getlength(piece) for piece, face in runs(text, fonts))
