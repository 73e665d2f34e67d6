"""A branch's modem as its manager sets it: where the modem is plugged in and the SIM's PIN.

The gateway serving the branch reads this at connect and watches `version`: when it goes up, the
gateway closes its port and connects again with the new values (hardware/gateway.py). An empty
field means "the gateway's own configuration" (MODEM_PORT, MODEM_PIN). The PIN is never shown
back, never written to the audit log and never logged: only whether one is set."""
from __future__ import annotations

import re

from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from .. import audit, clock
from ..database import write_transaction
from ..errors import Conflict
from ..extensions import db
from ..models import Branch, ModemSetting
from . import FieldErrors

PORT_MAX_LENGTH = 300  # udev's /dev/serial/by-id and by-path names run past 100 characters
PIN_MAX_LENGTH = 8
# A device or a udev link to one (/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0): the
# characters udev uses, nothing a shell or a URL would read differently.
DEVICE = re.compile(r"/dev/[A-Za-z0-9._:+@=,/-]+")
IMEI = re.compile(r"imei:[0-9]{15}")  # found on whichever serial port answers with this IMEI
PIN = re.compile(r"[0-9]{4,8}")


def get(branch: Branch) -> dict:
    """The branch's settings as pages and the API show them: the port, and whether a PIN is set."""
    row = db.session.get(ModemSetting, branch.id)
    return {
        "branch": branch.id,
        "port": row.port if row is not None else None,
        "pin_set": bool(row is not None and row.pin),
        "version": row.version if row is not None else 0,
        "updated_at": row.updated_at if row is not None else None,
    }


def update(branch: Branch, data: dict) -> dict:
    """Change the port and/or the PIN: `data` holds the fields to change ("port", "pin"); a field
    left out stays as it is, an empty one (or None) goes back to the gateway's configuration.
    All or nothing; `version` goes up only when something changed."""
    errors = FieldErrors()
    wanted = {}
    if "port" in data:
        wanted["port"] = _port(data["port"], errors)
    if "pin" in data:
        wanted["pin"] = _pin(data["pin"], errors)
    errors.raise_if_any(gettext("Nothing was changed: please correct the fields marked."))
    try:
        with write_transaction() as session:
            row = session.get(ModemSetting, branch.id, with_for_update=True)
            changed = [field for field, value in wanted.items() if value != (getattr(row, field) if row else None)]
            if changed:
                if row is None:
                    row = ModemSetting(branch_id=branch.id, version=0)
                    session.add(row)
                for field in changed:
                    setattr(row, field, wanted[field])
                row.version += 1
                row.updated_at = clock.now()
                detail = {"subject": "modem", "changed": changed, "port": row.port, "pin_set": bool(row.pin),
                          "version": row.version}
    except IntegrityError:  # someone saved this branch's first settings at the same moment
        raise Conflict(gettext("Someone else saved the modem settings at the same time: please try again.")) from None
    if changed:
        audit.record("settings.changed", target=f"modem:{branch.id}", branch_id=branch.id, detail=detail)
    return get(branch)


def _port(value, errors: FieldErrors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add("port", gettext("The port must be text."))
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > PORT_MAX_LENGTH:
        errors.add("port", gettext("The port has at most %(count)s characters.", count=PORT_MAX_LENGTH))
    elif value.lower().startswith("imei:") and not IMEI.fullmatch(value):
        errors.add("port", gettext("After imei: give the modem's IMEI: 15 digits."))
    elif not (IMEI.fullmatch(value) or (DEVICE.fullmatch(value) and ".." not in value.split("/"))):
        errors.add("port", gettext("Give a device such as /dev/ttyUSB0 or a /dev/serial/by-id/… path, "
                                   "or imei: and the modem's 15-digit IMEI."))
    return value


def _pin(value, errors: FieldErrors) -> str | None:
    """The PIN, checked without ever repeating it in a message."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not PIN.fullmatch(value):
        errors.add("pin", gettext("The PIN is 4 to 8 digits."))
        return None
    return value
