"""Staff accounts: who signs in, with which role, in which branches, in which language.

The settings pages (admin/users.py), /api/v1/admin/users and `flask user ...` all call these
functions. The actor is the person or API token acting; None is the command line, which may do
anything. The rules, on top of core/scope.py's reach:
- an administrator changes anyone;
- a manager sees the users who share one of their branches (anyone else is not found), and
  changes only staff and managers whose every branch is theirs, giving only their own branches
  and never the administrator role;
- the last active administrator stays one, and nobody deactivates themselves: nobody can lock
  everyone out;
- usernames are unique whatever their case ("Anna" and "anna" would be told apart at the login
  but not by the people reading a list).
A deactivation or a new password ends every session of the person at once (session_epoch). API
tokens belong to an integration, not to a person (core/tokens.py), so none ends with an account.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
import zlib
from datetime import datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import audit, clock, scope
from ..auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Forbidden
from ..database import write_transaction
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..language import LANGUAGE_NAMES
from ..models import Branch, StaffUser, new_session_epoch, staff_branches
from ..web import MAX_ID
from . import FieldErrors

ROLES = StaffUser.ROLES
USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,40}")
MAX_NAME = 80
# One PostgreSQL advisory lock for every change of an account, so that a username's clash in any
# case (which the unique index cannot see) and the last administrator are decided one change at a
# time. SQLite's write transaction (BEGIN IMMEDIATE) already is one at a time.
ACCOUNTS_LOCK = zlib.crc32(b"seed.staff_user")
# Each language named in itself: the reader looks for their own.
# What the list's "last change" is read from: the entries about an account.
ACCOUNT_ACTIONS = ("user.created", "user.password_set", "user.password_changed", "settings.changed")


# --- who may see and change whom ---------------------------------------------------------------

def _reach(actor) -> frozenset[int] | None:
    """The actor's branches; None: every branch (an administrator, the command line)."""
    return None if actor is None else scope.branch_ids(actor)


def _is_admin(actor) -> bool:
    return actor is None or getattr(actor, "role", None) == "admin"


def _require_manager(actor) -> None:
    if actor is not None and not scope.has_role("manager", actor):
        raise Forbidden(gettext("Only managers and administrators manage accounts."))


def visible(user: StaffUser, actor) -> bool:
    reach = _reach(actor)
    return reach is None or bool(reach.intersection(user.branch_ids))


def editable(user: StaffUser, actor) -> bool:
    """A manager changes staff and managers wholly within their branches: not someone who also
    works for a branch they do not manage, whose other manager would be overruled."""
    reach = _reach(actor)
    return reach is None or (user.role != "admin" and bool(user.branch_ids) and set(user.branch_ids) <= reach)


def require_editable(user: StaffUser, actor) -> None:
    if not editable(user, actor):
        raise Forbidden(gettext("You may change only staff and managers who work in your branches alone."))


def get(user_id, actor=None) -> StaffUser:
    """The account `user_id` if the actor may see it; NotFound otherwise, as for one not there."""
    _require_manager(actor)
    user = db.session.get(StaffUser, user_id) if isinstance(user_id, int) and 0 < user_id <= MAX_ID else None
    if user is None or not visible(user, actor):
        raise NotFound(gettext("User %(id)s does not exist.", id=user_id))
    return user


def find(username: str) -> StaffUser | None:
    """For the command line: the account of this username, in any case."""
    exact = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    return exact or db.session.scalar(select(StaffUser).where(func.lower(StaffUser.username) == username.lower()))


def listing(actor=None, branch_id: int | None = None) -> list[StaffUser]:
    """Every account the actor may see, by username; with branch_id, that branch's only."""
    _require_manager(actor)
    reach = _reach(actor)
    if branch_id is not None:
        if reach is not None and branch_id not in reach:
            raise NotFound(gettext("Branch %(id)s does not exist.", id=branch_id))
        reach = frozenset({branch_id})
    query = select(StaffUser).options(selectinload(StaffUser.other_branches))
    if reach is not None:
        ids = sorted(reach)
        further = select(staff_branches.c.user_id).where(staff_branches.c.branch_id.in_(ids))
        query = query.where(or_(StaffUser.branch_id.in_(ids), StaffUser.id.in_(further)))
    return list(db.session.scalars(query.order_by(func.lower(StaffUser.username))))


def shown_branch_ids(user: StaffUser, actor=None) -> list[int]:
    """The user's branches as the actor may know them: a manager does not learn of other branches."""
    reach = _reach(actor)
    return [i for i in user.branch_ids if reach is None or i in reach]


def as_json(user: StaffUser, actor=None) -> dict:
    """An account for the API: never its password hash or session epoch."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
            "branches": shown_branch_ids(user, actor), "language": user.language, "active": user.active,
            "editable": editable(user, actor)}


def last_changes(users) -> dict[int, datetime]:
    """When each account last changed, from the audit log (created_at when it has no entry).
    Reads only the entries of account actions about these accounts: bounded by people's edits,
    never by tickets."""
    by_target = {f"user:{user.username}": user for user in users}
    changed = {user.id: user.created_at for user in users}
    if not by_target:
        return changed
    query = (select(audit.AuditEntry.target, func.max(audit.AuditEntry.at))
             .where(audit.AuditEntry.action.in_(ACCOUNT_ACTIONS), audit.AuditEntry.target.in_(list(by_target)))
             .group_by(audit.AuditEntry.target))
    for target, at in db.session.execute(query):
        changed[by_target[target].id] = at
    return changed


# --- reading the fields ------------------------------------------------------------------------

def _username(raw, errors: FieldErrors) -> str | None:
    if not isinstance(raw, str) or not USERNAME.fullmatch(raw):
        errors.add("username", gettext("Usernames are 2-40 letters, digits, dots, dashes or underscores."))
        return None
    return raw


def _display_name(raw, errors: FieldErrors) -> str | None:
    name = unicodedata.normalize("NFC", raw).strip() if isinstance(raw, str) else ""
    if not 1 <= len(name) <= MAX_NAME or any(unicodedata.category(ch).startswith("C") for ch in name):
        errors.add("display_name", gettext("Give a name of 1-%(count)s characters, on one line.", count=MAX_NAME))
        return None
    return name


def _role(raw, actor, errors: FieldErrors) -> str | None:
    if raw not in ROLES:
        errors.add("role", gettext("Choose a role: staff, manager or administrator."))
        return None
    if raw == "admin" and not _is_admin(actor):
        errors.add("role", gettext("Only an administrator can make someone an administrator."))
        return None
    return raw


def _branch_id(item) -> int | None:
    """A branch id from JSON (a number) or a form (digits); None when it is neither."""
    if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) <= 10:
        item = int(item)
    if isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_ID:
        return item
    return None


def _branches(raw, actor, errors: FieldErrors) -> list[int] | None:
    """Branch ids, the home branch first, each known and within the actor's reach."""
    items = raw if isinstance(raw, list) else [] if raw in (None, "") else [raw]
    ids = []
    for item in items:
        if item in (None, ""):
            continue
        branch_id = _branch_id(item)
        if branch_id is None:
            errors.add("branches", gettext("Branches are given by their numbers."))
            return None
        if branch_id not in ids:
            ids.append(branch_id)
    known = set(db.session.scalars(select(Branch.id).where(Branch.id.in_(ids)))) if ids else set()
    reach = _reach(actor)
    if reach is not None and any(i not in known or i not in reach for i in ids):
        # the same words for a branch out of reach and one that is not there: neither is confirmed
        errors.add("branches", gettext("You can give only the branches you manage."))
        return None
    missing = [str(i) for i in ids if i not in known]
    if missing:
        errors.add("branches", gettext("There is no branch %(ids)s.", ids=", ".join(missing)))
        return None
    return ids


def _language(raw, errors: FieldErrors) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in current_app.config["LANGUAGES"]:
        errors.add("language", gettext("Choose English, Japanese, Georgian or the browser's language."))
    return raw if raw in current_app.config["LANGUAGES"] else None


def language_choices() -> list[tuple[str, str]]:
    """A person's language as a form offers it: the browser's (stored as None), then each one."""
    return [("", gettext("The browser's language")),
            *((code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"])]


def _active(raw, errors: FieldErrors) -> bool | None:
    if not isinstance(raw, bool):
        errors.add("active", gettext("Active is true or false."))
        return None
    return raw


def _password(raw, errors: FieldErrors) -> str | None:
    if not isinstance(raw, str) or not MIN_PASSWORD_LENGTH <= len(raw) <= MAX_PASSWORD_LENGTH:
        errors.add("password", gettext("Passwords need at least %(count)s characters (at most %(most)s).",
                                       count=MIN_PASSWORD_LENGTH, most=MAX_PASSWORD_LENGTH))
        return None
    return raw


def _read(data, actor, user: StaffUser | None, errors: FieldErrors) -> dict:
    """The fields given in `data`, checked. A field left out stays as it is (an update) or takes
    its default (a new account: role staff, no language, active)."""
    if not isinstance(data, dict):
        raise ValidationError(gettext("Send the account's fields."), {"body": "not an object"})
    creating = user is None
    readers = {
        "username": lambda raw: _username(raw, errors),
        "display_name": lambda raw: _display_name(raw, errors),
        "role": lambda raw: _role(raw, actor, errors),
        "branches": lambda raw: _branches(raw, actor, errors),
        "language": lambda raw: _language(raw, errors),
        "active": lambda raw: _active(raw, errors),
    }
    required = ("username", "display_name", "branches") if creating else ()
    new = {field: read(data.get(field)) for field, read in readers.items() if field in data or field in required}
    if creating and data.get("password") not in (None, ""):
        new["password"] = _password(data["password"], errors)
    elif not creating and "password" in data:
        errors.add("password", gettext("A password is not edited here: reset it, or let its owner change it."))
    role = new.get("role") or ("staff" if creating else user.role)
    branches = new.get("branches", [] if creating else user.branch_ids)
    if role != "admin" and branches == [] and "branches" not in errors and "role" not in errors:
        errors.add("branches", gettext("Staff and managers work in at least one branch: choose it."))
    return new


# --- deciding under the lock -------------------------------------------------------------------

def _one_at_a_time(session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ACCOUNTS_LOCK})


def _name_taken(username: str, user: StaffUser | None) -> bool:
    query = select(StaffUser.id).where(func.lower(StaffUser.username) == username.lower())
    if user is not None:
        query = query.where(StaffUser.id != user.id)
    return db.session.scalar(query.limit(1)) is not None


def _other_active_admins(user: StaffUser) -> int:
    query = select(func.count()).select_from(StaffUser).where(
        StaffUser.role == "admin", StaffUser.active.is_(True), StaffUser.id != user.id)
    return db.session.scalar(query)


def _check_state(user: StaffUser | None, new: dict, actor, errors: FieldErrors) -> None:
    """What depends on the other accounts: decided under the lock, with the fields' errors."""
    if new.get("username") and _name_taken(new["username"], user):
        errors.add("username", gettext("A user named %(name)s exists already.", name=new["username"]))
    if user is None:
        return
    if new.get("active") is False and actor is not None and getattr(actor, "id", None) == user.id:
        errors.add("active", gettext("You cannot deactivate your own account."))
    stays_admin = new.get("role", user.role) == "admin" and new.get("active", user.active)
    if user.role == "admin" and user.active and not stays_admin and not _other_active_admins(user):
        field = "role" if new.get("role", "admin") != "admin" else "active"
        errors.add(field, gettext("This is the last active administrator: make someone else an administrator first."))


def _apply(user: StaffUser, new: dict) -> list[str]:
    """Set the new values; the fields that changed."""
    changed = []
    for field in ("username", "display_name", "role", "language", "active"):
        if field in new and getattr(user, field) != new[field]:
            setattr(user, field, new[field])
            changed.append(field)
    if "branches" in new and new["branches"] != user.branch_ids:
        ids = new["branches"]
        user.branch_id = ids[0] if ids else None
        user.other_branches = [db.session.get(Branch, i) for i in ids[1:]]
        changed.append("branches")
    if new.get("active") is False and "active" in changed:
        user.session_epoch = new_session_epoch()  # every session ends from its next request
    return changed


def _save(user: StaffUser | None, data, actor) -> tuple[StaffUser, list[str], str | None]:
    """Check everything, then change all or nothing in one transaction."""
    _require_manager(actor)
    errors = FieldErrors()
    new = _read(data, actor, user, errors)
    existing, password = user, None
    try:
        with write_transaction() as session:
            _one_at_a_time(session)
            if user is not None:
                require_editable(user, actor)  # again under the lock: the account may have moved on
            _check_state(user, new, actor, errors)
            errors.raise_if_any()
            if user is None:
                password = new.pop("password", None) or secrets.token_urlsafe(12)
                user = StaffUser(username=new["username"], display_name=new["display_name"], role="staff",
                                 active=True, created_at=clock.now())
                user.set_password(password)
                session.add(user)
            changed = _apply(user, new)
    except IntegrityError:
        # the database's last word on a clash the lock did not see (a change from elsewhere)
        if new.get("username") and _name_taken(new["username"], existing):
            clash = FieldErrors()
            clash.add("username", gettext("A user named %(name)s exists already.", name=new["username"]))
            clash.raise_if_any()
        raise
    return user, changed, password


# --- the changes -------------------------------------------------------------------------------

def _target(user: StaffUser) -> str:
    return f"user:{user.username}"


def create(data, actor=None) -> tuple[StaffUser, str]:
    """A new account, and its password: the one given in data["password"], else a generated one
    to show once (it is kept only hashed)."""
    user, _changed, password = _save(None, data, actor)
    audit.record("user.created", target=_target(user), branch_id=user.branch_id,
                 detail={"role": user.role, "branches": user.branch_ids})
    return user, password


def update(user: StaffUser, data, actor=None) -> StaffUser:
    """Change the fields given in `data`; the others stay. A deactivation ends every session."""
    was = user.username
    user, changed, _password = _save(user, data, actor)
    if changed:
        detail = {"fields": changed, **{f: getattr(user, f) for f in ("role", "language", "active") if f in changed}}
        if "branches" in changed:
            detail["branches"] = user.branch_ids
        if "username" in changed:
            detail["was"] = was
        audit.record("settings.changed", target=_target(user), branch_id=user.branch_id, detail=detail)
    return user


def deactivate(user: StaffUser, actor=None) -> StaffUser:
    return update(user, {"active": False}, actor)


def reactivate(user: StaffUser, actor=None) -> StaffUser:
    return update(user, {"active": True}, actor)


def reset_password(user: StaffUser, actor=None, password: str | None = None) -> str:
    """A new password (the one given, else a generated one to show once); every session of the
    person ends."""
    _require_manager(actor)
    errors = FieldErrors()
    if password is not None:
        _password(password, errors)
    errors.raise_if_any()
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    with write_transaction() as session:
        _one_at_a_time(session)
        require_editable(user, actor)
        user.set_password(password)
        user.session_epoch = new_session_epoch()
    audit.record("user.password_set", target=_target(user), branch_id=user.branch_id,
                 detail={"generated": generated})
    return password


def set_language(user: StaffUser, language) -> StaffUser:
    """A person's own choice of language for the staff pages (None: the browser's)."""
    errors = FieldErrors()
    value = _language(language, errors)
    errors.raise_if_any()
    if value != user.language:
        with write_transaction():
            user.language = value
        audit.record("settings.changed", target=_target(user), branch_id=user.branch_id,
                     detail={"fields": ["language"], "language": value})
    return user
