"""API tokens for integrations and registered kiosks: a random secret shown once, kept as its SHA-256.

The secret is 32 random bytes, so its plain SHA-256 can be neither reversed nor guessed: no slow
password hash is needed and checking a token costs one indexed lookup (HTTP Basic cost a scrypt
check, ~100 ms, on every request). A kiosk is a token of role "kiosk" for one branch; it only
names the kiosk to the check-in rate limit and is never accepted as a staff principal.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import Column, ForeignKey, String, Table, bindparam, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from . import clock
from .database import write_transaction
from .errors import NotFound, SeedError, ValidationError
from .extensions import db
from .models import Branch
from .types import UTCDateTime

log = logging.getLogger(__name__)

ROLES = ("staff", "manager", "admin")  # what an integration may be; core/scope.py says what each may do
KIOSK = "kiosk"
PREFIX = "seed_"  # recognisable in a config file or a leaked log, like other services' tokens
HINT_LENGTH = len(PREFIX) + 6
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often: not a write per request
MAX_SECRET = 200
MAX_EXPIRY_DAYS = 3650

api_token_branches = Table(
    "api_token_branch",
    db.metadata,
    Column("token_id", ForeignKey("api_token.id", ondelete="CASCADE"), primary_key=True),
    Column("branch_id", ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True),
)


class ApiToken(db.Model):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(10))  # staff, manager, admin or kiosk
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    hint: Mapped[str] = mapped_column(String(16))  # the secret's first characters, to recognise it in a list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(40))  # the admin's username; None: the command line
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    branches: Mapped[list[Branch]] = relationship(secondary=api_token_branches, order_by="Branch.id")

    @property
    def is_kiosk(self) -> bool:
        return self.role == KIOSK

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class TokenRefused(SeedError):
    status = 401
    code = "invalid_token"


@dataclass(frozen=True)
class TokenPrincipal:
    """What Flask-Login's current_user is for a request carrying an API token. It has no `id`:
    what it does is recorded without a staff member (core.engine reads `staff.id` when present)."""

    token_id: int
    name: str
    role: str
    branch_ids: list[int] = field(default_factory=list)
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"token:{self.token_id}"

    @property
    def username(self) -> str:
        return f"token:{self.name}"

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def branch_id(self) -> int | None:
        return self.branch_ids[0] if self.branch_ids else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- creating, listing, revoking ---------------------------------------------------------------

def _clean_name(raw) -> str:
    name = unicodedata.normalize("NFC", raw).strip() if isinstance(raw, str) else ""
    if not 1 <= len(name) <= 80:
        raise ValidationError(gettext("Give a name of 1-80 characters that says who uses it."), {"name": "required"})
    if any(unicodedata.category(ch).startswith("C") for ch in name) or re.search(r"[<>]", name):
        raise ValidationError(gettext("Names may not contain < > or control characters."),
                              {"name": "invalid characters"})
    return name


def _branches(branch_ids) -> list[Branch]:
    ids = []
    for raw in branch_ids or ():
        if raw in (None, ""):
            continue
        try:
            ids.append(int(raw))
        except (TypeError, ValueError):
            raise ValidationError(gettext("Branch %(value)s is not a branch id.", value=repr(str(raw)[:20])),
                                  {"branches": "not a number"}) from None
    ids = sorted(set(ids))
    found = db.session.scalars(select(Branch).where(Branch.id.in_(ids)).order_by(Branch.id)).all() if ids else []
    missing = sorted(set(ids) - {b.id for b in found})
    if missing:
        raise ValidationError(gettext("No branch %(ids)s.", ids=", ".join(map(str, missing))), {"branches": "unknown"})
    return list(found)


def create(name, role, branch_ids=(), *, expires_days=None, created_by=None) -> tuple[ApiToken, str]:
    """A new token and its secret; the secret is not kept and cannot be shown again."""
    name = _clean_name(name)
    if role not in (*ROLES, KIOSK):
        raise ValidationError(gettext("role must be one of %(roles)s.", roles=", ".join(ROLES)), {"role": "unknown"})
    branches = _branches(branch_ids)
    if role == "admin":
        branches = []  # an administrator reaches every branch (core/scope.py); a list would mislead
    elif role == KIOSK and len(branches) != 1:
        raise ValidationError(gettext("A kiosk belongs to exactly one branch."), {"branches": "one"})
    elif not branches:
        raise ValidationError(gettext("Choose the branches this token may use."), {"branches": "required"})
    if expires_days is not None and (not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_EXPIRY_DAYS):
        raise ValidationError(gettext("A token expires after 1-%(most)s days, or never.", most=MAX_EXPIRY_DAYS),
                              {"expires_days": "range"})
    now = clock.now()
    secret = PREFIX + secrets.token_urlsafe(32)
    with write_transaction() as session:
        token = ApiToken(name=name, role=role, secret_hash=digest(secret), hint=secret[:HINT_LENGTH],
                         created_at=now, created_by=created_by, branches=branches,
                         expires_at=now + timedelta(days=expires_days) if expires_days else None)
        session.add(token)
    log.info("%s token %d %r (%s) created by %s", "kiosk" if role == KIOSK else "API", token.id, name, role,
             created_by or "the command line")
    return token, secret


def create_kiosk(branch_id, name, *, created_by=None) -> tuple[ApiToken, str]:
    return create(name, KIOSK, [branch_id], created_by=created_by)


def listing(*, kiosks: bool) -> list[ApiToken]:
    kind = ApiToken.role == KIOSK if kiosks else ApiToken.role != KIOSK
    query = select(ApiToken).where(kind).options(selectinload(ApiToken.branches))
    return list(db.session.scalars(query.order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))


def revoke(token_id, *, kiosk: bool, by=None) -> ApiToken:
    """Revoke a token (or a kiosk); its next request is refused. Revoking twice changes nothing."""
    token = db.session.get(ApiToken, token_id) if isinstance(token_id, int) and 0 < token_id < 2**63 else None
    if token is None or token.is_kiosk != kiosk:
        raise NotFound(gettext("Kiosk %(ident)s does not exist.", ident=token_id) if kiosk
                       else gettext("Token %(ident)s does not exist.", ident=token_id))
    if token.revoked_at is None:
        with write_transaction():
            token.revoked_at = clock.now()
        log.info("%s token %d %r revoked by %s", "kiosk" if kiosk else "API", token.id, token.name,
                 by or "the command line")
    return token


# --- checking a request's token ---------------------------------------------------------------

# Statements of every API request and kiosk check-in: built once, bound at each use.
@functools.cache
def _by_secret():
    return select(ApiToken).where(ApiToken.secret_hash == bindparam("hash"))


@functools.cache
def _branch_ids():
    table = api_token_branches
    return select(table.c.branch_id).where(table.c.token_id == bindparam("token")).order_by(table.c.branch_id)


def _lookup(secret) -> ApiToken | None:
    """The token a secret stands for; its branches are loaded when asked for (a principal needs
    their ids only, a kiosk's check-in none)."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX) or len(secret) > MAX_SECRET:
        return None
    return db.session.scalar(_by_secret(), {"hash": digest(secret)})


def _touch(token: ApiToken, now: datetime) -> None:
    """Remember when a token was last used, at most once a minute. Runs as the request's principal
    is loaded, before the view has changed anything."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    with write_transaction() as session:
        session.execute(update(ApiToken).where(
            ApiToken.id == token.id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY),
        ).values(last_used_at=now).execution_options(synchronize_session=False))


def principal_for(secret: str) -> TokenPrincipal:
    """The principal an integration's `Authorization: Bearer <secret>` stands for; TokenRefused
    (401, saying why) for an unknown, revoked or expired token or a kiosk's."""
    token = _lookup(secret)
    now = clock.now()
    if token is None:
        raise TokenRefused(gettext("This API token is not known. Check it was copied whole, or ask an administrator "
                                   "for one."))
    if token.is_kiosk:
        raise TokenRefused(gettext("This is a kiosk's token: it is only for the kiosk's check-ins."))
    state = token.state(now)
    if state == "revoked":
        raise TokenRefused(gettext("API token %(name)s was revoked on %(moment)s UTC. Ask an administrator for a "
                                   "new one.", name=repr(token.name), moment=f"{token.revoked_at:%Y-%m-%d %H:%M}"),
                           {"token": "revoked"})
    if state == "expired":
        raise TokenRefused(gettext("API token %(name)s expired on %(moment)s UTC. Ask an administrator for a new one.",
                                   name=repr(token.name), moment=f"{token.expires_at:%Y-%m-%d %H:%M}"),
                           {"token": "expired"})
    principal = TokenPrincipal(token.id, token.name, token.role, list(db.session.scalars(_branch_ids(), {"token": token.id})))
    _touch(token, now)
    return principal


def kiosk_for(secret) -> ApiToken | None:
    """The registered kiosk a request's X-Kiosk-Token names, if that kiosk is still active."""
    token = _lookup(secret)
    now = clock.now()
    if token is None or not token.is_kiosk or token.state(now) != "active":
        return None
    _touch(token, now)
    return token
