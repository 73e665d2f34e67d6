"""A branch's logo: checked (PNG or JPEG by its first bytes, and read by Pillow), then kept in the
instance folder as branding/branch-<id>-<sha8>.<ext>. The name changes with the content, so the
public route that serves it may let browsers and kiosks keep it for a year."""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

try:  # the bytes are checked either way; Pillow also proves the image can be drawn
    from PIL import Image
except ImportError:  # pragma: no cover - Pillow is in requirements
    Image = None

MAX_BYTES = 512 * 1024
MAX_SIDE = 4096  # pixels: a logo, not a poster (and no decompression bomb)
KINDS = ((b"\x89PNG\r\n\x1a\n", "png", "PNG"), (b"\xff\xd8\xff", "jpg", "JPEG"))
NAME = re.compile(r"branch-[0-9]{1,10}-[0-9a-f]{8}\.(?:png|jpg)")
_DATA_URL = re.compile(r"data:image/(?:png|jpeg);base64,", re.IGNORECASE)


def folder() -> Path:
    return Path(current_app.instance_path) / "branding"


def as_bytes(value) -> bytes | None:
    """An upload's bytes, or a JSON data URL ("data:image/png;base64,...") decoded; None if neither."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and _DATA_URL.match(value):
        try:
            return base64.b64decode(value[_DATA_URL.match(value).end():], validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def problem(raw: bytes) -> str | None:
    """Why these bytes cannot be a logo, in the reader's language; None if they can."""
    if not raw:
        return _("The file is empty.")
    if len(raw) > MAX_BYTES:
        return _("The logo is %(size)s KB; it may be at most %(limit)s KB.", size=len(raw) // 1024,
                 limit=MAX_BYTES // 1024)
    kind = kind_of(raw)
    if kind is None:
        return _("Only PNG and JPEG images can be a logo.")
    if Image is not None:
        try:
            with Image.open(io.BytesIO(raw)) as image:
                image.verify()
                if image.format != kind[2]:
                    return _("Only PNG and JPEG images can be a logo.")
                if max(image.size) > MAX_SIDE:
                    return _("The logo may be at most %(side)s pixels wide and high.", side=MAX_SIDE)
        except Exception:  # Pillow raises many kinds for a damaged file: all mean the same here
            return _("The file is not a readable image.")
    return None


def kind_of(raw: bytes):
    return next((kind for kind in KINDS if raw.startswith(kind[0])), None)


def store(branch_id: int, raw: bytes) -> str:
    """Write the checked bytes; returns the file name (what Branch.branding["logo"] holds)."""
    name = f"branch-{branch_id}-{hashlib.sha256(raw).hexdigest()[:8]}.{kind_of(raw)[1]}"
    folder().mkdir(parents=True, exist_ok=True)
    (folder() / name).write_bytes(raw)
    return name


def discard(name: str | None) -> None:
    """Remove a logo file no branch uses any more (a name that is not ours is left alone)."""
    if name and NAME.fullmatch(name):
        (folder() / name).unlink(missing_ok=True)
