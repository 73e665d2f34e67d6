"""The one scope rule: whose data a signed-in person (or an API token) may read and change.

Roles, each able to do what the ones before it can:
  staff    the console, the inbox and the appointments of their own branches
  manager  also settings, reports and staff of their own branches
  admin    everything, in every branch, and what belongs to no branch yet (texts from a number
           no branch knows, which an admin assigns)
A person may belong to several branches. A row of a branch out of reach is answered as not found,
never as forbidden: its existence is not confirmed. Every route reads and changes branch data
through this module; none writes its own check (tests/test_isolation.py walks every route).
"""
from __future__ import annotations

from functools import wraps

from flask_login import current_user
from sqlalchemy import select

from . import logs
from .auth import Forbidden
from .errors import NotFound
from .extensions import db, login_manager
from .web import MAX_ID

ROLES = ("staff", "manager", "admin")


def _user(user=None):
    return user if user is not None else current_user


def rank(role: str | None) -> int:
    return ROLES.index(role) if role in ROLES else -1


def has_role(role: str, user=None) -> bool:
    user = _user(user)
    return bool(getattr(user, "is_authenticated", False)) and rank(getattr(user, "role", None)) >= rank(role)


def branch_ids(user=None) -> frozenset[int] | None:
    """The branches within reach; None means every branch (an admin)."""
    user = _user(user)
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    if getattr(user, "role", None) == "admin":
        return None
    return frozenset(getattr(user, "branch_ids", ()) or ())


def can_see(branch_id, user=None) -> bool:
    reach = branch_ids(user)
    return reach is None or (branch_id is not None and branch_id in reach)


def scoped(query, model, user=None):
    """`query` limited to the rows of `model` within reach (rows of no branch: admins only)."""
    reach = branch_ids(user)
    if reach is None:
        return query
    return query.where(model.branch_id.in_(sorted(reach)))


def owned(model, ident, what: str | None = None, user=None):
    """The row `ident` of `model` if it is within reach; NotFound otherwise (or if it is not there)."""
    # ids are 32-bit on PostgreSQL: a larger one is simply not there (never a database error)
    row = db.session.get(model, ident) if isinstance(ident, int) and 0 < ident <= MAX_ID else None
    # a branch's own row is the branch itself
    branch_id = None if row is None else row.id if model.__tablename__ == "branch" else row.branch_id
    if row is None or not can_see(branch_id, user):
        raise NotFound(f"{what or model.__name__} {ident} does not exist.")
    logs.note_branch(branch_id)  # what the request's log lines are about
    return row


def branch(branch_id=None, user=None):
    """The branch a request acts on: the one asked for if within reach, else the person's first."""
    from .models import Branch

    reach = branch_ids(user)
    if branch_id is not None:
        return owned(Branch, branch_id, "Branch", user)
    query = select(Branch).order_by(Branch.id)
    if reach is not None:
        if not reach:
            raise NotFound("You belong to no branch yet: ask an administrator to add you to one.")
        query = query.where(Branch.id.in_(sorted(reach)))
    found = db.session.scalar(query.limit(1))
    if found is None:
        raise NotFound("No branch is set up yet.")
    logs.note_branch(found.id)
    return found


def branches(user=None) -> list:
    """The branches within reach, by name: for a page's branch chooser."""
    from .models import Branch

    query = select(Branch).order_by(Branch.name)
    reach = branch_ids(user)
    if reach is not None:
        query = query.where(Branch.id.in_(sorted(reach)))
    return db.session.scalars(query).all()


def require_role(role: str):
    """View decorator: signed in, with at least `role`."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not getattr(current_user, "is_authenticated", False):
                return login_manager.unauthorized()
            if not has_role(role):
                raise Forbidden(f"This needs the {role} role.")
            return view(*args, **kwargs)

        return wrapper

    return decorate
