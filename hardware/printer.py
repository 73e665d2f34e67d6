"""Ticket printing through python-escpos. A Latin ticket in plain ASCII goes to the printer as
text; Japanese and Georgian, which receipt printers' code pages lack, and any ticket with a
character beyond ASCII (a Japanese service name on an English ticket), are drawn with the bundled
Noto fonts (ticket_fonts: a font per character) and printed as an image. A failed print never
loses a check-in: the caller keeps the ticket and tells the customer.

PRINTER config (instance/config.py):
    {"kind": "file", "path": "/path/printed-tickets.bin"}   development: ESC/POS bytes appended to a file
    {"kind": "usb", "vendor": 0x04B8, "product": 0x0202}      e.g. an Epson TM-T20
    {"kind": "serial", "port": "/dev/ttyS0", "baudrate": 19200}
    {"kind": "network", "host": "192.168.1.50", "port": 9100}
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from escpos import printer as escpos_printer
from PIL import Image, ImageDraw

from core.language import customer_datetime
from hardware import ticket_fonts

log = logging.getLogger(__name__)
DRAWN_LANGUAGES = ("ja", "ka")  # their words are in no printer's code page
PAPER_DOTS = 512  # 80 mm paper at 203 dpi; 58 mm printers take 384
LOGO_DOTS = (384, 160)  # the most a logo takes: fits 58 mm paper, and keeps the ticket short


class PrintFailed(Exception):
    pass


def _device(settings: dict):
    kind = settings.get("kind")
    if kind == "usb":
        return escpos_printer.Usb(settings["vendor"], settings["product"])
    if kind == "serial":
        return escpos_printer.Serial(settings["port"], baudrate=settings.get("baudrate", 19200))
    if kind == "network":
        return escpos_printer.Network(settings["host"], port=settings.get("port", 9100), timeout=settings.get("timeout", 5))
    if kind == "file":
        return escpos_printer.Dummy()
    raise PrintFailed(f"Unknown printer kind {kind!r}: use file, usb, serial or network.")


def ticket_lines(ticket: dict, branch_name: str, when_local: str) -> list[tuple[str, int, bool]]:
    """What a drawn ticket prints, top to bottom, as (text, size, bold); the QR code follows."""
    words = ticket["print_words"]
    return [(branch_name, 28, True), (words["your_ticket"], 26, False), (ticket["number"], 96, True),
            (ticket["service_name"], 30, False), (words["ahead"], 26, False), (words["wait"], 26, False),
            (when_local, 24, False), (words["scan"], 22, False)]


def drawn(lines: list[tuple[str, int, bool]], language: str) -> bool:
    """Whether the ticket is printed as an image: text goes out only when the printer's own font
    surely has every character (printable ASCII is in every code page)."""
    return language in DRAWN_LANGUAGES or not all(text.isascii() and text.isprintable() for text, _, _ in lines)


def layout(lines: list[tuple[str, int, bool]], language: str, width=PAPER_DOTS):
    """(text, size, bold) lines wrapped to the paper: a list of printed lines, each a list of
    (piece, font) runs and the language's font chain at that size."""
    placed = []
    for text, size, bold in lines:
        fonts = ticket_fonts.chain(language, size, bold)
        fits = lambda piece: ticket_fonts.width(piece, fonts) <= width - 16  # noqa: E731
        words, line = text.split(" "), ""
        for word in words:  # wrap at spaces; CJK text without spaces is wrapped by character
            candidate = (line + " " + word).strip()
            if fits(candidate):
                line = candidate
                continue
            if line:
                placed.append((line, fonts))
            line = word
            while not fits(line):
                cut = max((i for i in range(1, len(line)) if fits(line[:i])), default=1)
                placed.append((line[:cut], fonts))
                line = line[cut:]
        placed.append((line, fonts))
    return [(ticket_fonts.runs(line, fonts), fonts) for line, fonts in placed]


def render_image(lines: list[tuple[str, int, bool]], language: str, width=PAPER_DOTS) -> Image.Image:
    """Draw (text, size, bold) lines, centred, black on white, as a receipt printer wants them.
    A line's runs share one baseline, where the language's first font would put it."""
    placed = layout(lines, language, width)
    height = sum(fonts[0].size + 12 for _, fonts in placed) + 16
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    y = 8
    for pieces, fonts in placed:
        x = (width - sum(face.getlength(piece) for piece, face in pieces)) / 2
        baseline = y + fonts[0].getmetrics()[0]
        for piece, face in pieces:
            draw.text((x, baseline), piece, font=face, fill=0, anchor="ls")
            x += face.getlength(piece)
        y += fonts[0].size + 12
    return image


def logo_image(path: Path | None) -> Image.Image | None:
    """The branch's logo as the printer wants it: at most LOGO_DOTS, transparency on white, black
    and white, centred on the paper's width (as render_image draws text). None when there is none
    or it cannot be read: a logo never stops a ticket."""
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            image.thumbnail(LOGO_DOTS)
            flat = Image.new("RGBA", image.size, "white")
            flat.alpha_composite(image.convert("RGBA"))
            paper = Image.new("1", (PAPER_DOTS, flat.height), 1)
            paper.paste(flat.convert("L").convert("1"), ((PAPER_DOTS - flat.width) // 2, 0))
            return paper
    except Exception as error:  # noqa: BLE001  (a broken or hostile file: print without it)
        log.warning("logo %s not printed: %s: %s", path.name, type(error).__name__, error)
        return None


def print_ticket(settings: dict, ticket: dict, branch_name: str, language: str, when_local: datetime | str,
                 logo: Path | None = None) -> None:
    """Print one ticket, or raise PrintFailed with the reason. `when_local`: the check-in on the
    branch's clock (aware), written as the customer's texts write it. `logo`: the branch's logo file, printed above."""
    words = ticket["print_words"]
    if isinstance(when_local, datetime):
        when_local = customer_datetime(when_local, when_local.tzinfo, language)
    lines = ticket_lines(ticket, branch_name, when_local)
    as_image = drawn(lines, language)
    logo = logo_image(logo)
    try:
        device = _device(settings)
        if logo is not None:
            device.image(logo)
        if as_image:
            device.image(render_image(lines, language))
        else:
            device.set(align="center", bold=True, double_height=True, double_width=True)
            device.text(f"{branch_name}\n")
            device.set(align="center", custom_size=True, width=4, height=4)
            device.text(f"{ticket['number']}\n")
            device.set(align="center", normal_textsize=True)
            device.text(f"{ticket['service_name']}\n{words['ahead']}\n{words['wait']}\n{when_local}\n")
        device.set(align="center", normal_textsize=True)
        device.qr(ticket["status_url"], size=6, native=True)  # the printer draws it: sharp, and small to send
        device.text("\n" if as_image else f"{words['scan']}\n")
        device.cut()
        if settings.get("kind") == "file":
            with open(settings["path"], "ab") as out:
                out.write(device.output)
        elif hasattr(device, "close"):
            device.close()
    except PrintFailed:
        raise
    except Exception as error:  # noqa: BLE001  (USB, serial and network fail in many ways)
        log.warning("ticket %s not printed: %s: %s", ticket.get("number"), type(error).__name__, error)
        raise PrintFailed(f"{type(error).__name__}: {error}") from error
