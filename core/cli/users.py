"""Staff accounts."""
import re
import secrets

import click
from sqlalchemy import select

from .. import audit, auth, clock
from ..extensions import db
from ..models import StaffUser
from . import _branch, _ready, user_cli


@user_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", help="Name shown in the console (default: the username).")
@click.option("--role", type=click.Choice(StaffUser.ROLES), default="staff", show_default=True)
@click.option("--password", help="Leave out to have one generated and printed once.")
@click.option("--branch", "branch_ids", type=int, multiple=True,
              help="Branch id; repeat for someone working in several (default: the first branch). "
                   "Admins reach every branch.")
def create_user(username, display_name, role, password, branch_ids):
    """Create a staff account."""
    _ready()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{2,40}", username):
        raise click.ClickException("Usernames are 2-40 letters, digits, dots, dashes or underscores.")
    if db.session.scalar(select(StaffUser).where(StaffUser.username == username)):
        raise click.ClickException(f"User {username} exists already.")
    if password is not None and len(password) < auth.MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"Passwords need at least {auth.MIN_PASSWORD_LENGTH} characters.")
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        role=role,
        branch_id=_branch(branch_ids[0] if branch_ids else None).id if role != "admin" or branch_ids else None,
        created_at=clock.now(),
    )
    user.other_branches = [_branch(extra) for extra in branch_ids[1:]]
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    audit.record("user.created", target=f"user:{username}", branch_id=user.branch_id,
                 detail={"role": role, "branches": user.branch_ids})
    click.echo(f"Created {role} {username}." + (f" Password (shown once): {password}" if generated else ""))


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def set_password(username, password):
    """Set a staff account's password."""
    _ready()
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        raise click.ClickException(f"No user {username}.")
    if len(password) < auth.MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"Passwords need at least {auth.MIN_PASSWORD_LENGTH} characters.")
    auth.set_password(user, password)  # whoever was logged in as this user logs in again
    audit.record("user.password_set", target=f"user:{username}", branch_id=user.branch_id)
    click.echo(f"Password of {username} changed; every session of {username} has ended.")
