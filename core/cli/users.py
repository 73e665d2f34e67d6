"""Staff accounts, through the same service layer as the settings pages (core/settings/users.py).
The command line may do anything an administrator may."""
import click

from ..models import StaffUser
from ..settings import users
from . import _branch, _call, _ready, user_cli


def _user(username: str) -> StaffUser:
    user = users.find(username)
    if user is None:
        raise click.ClickException(f"No user {username}.")
    return user


@user_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", help="Name shown in the console (default: the username).")
@click.option("--role", type=click.Choice(StaffUser.ROLES), default="staff", show_default=True)
@click.option("--password", help="Leave out to have one generated and printed once.")
@click.option("--branch", "branch_ids", type=int, multiple=True,
              help="Branch id, the home branch first; repeat for someone working in several "
                   "(default: the first branch). Admins reach every branch.")
def create_user(username, display_name, role, password, branch_ids):
    """Create a staff account."""
    _ready()
    if not branch_ids and role != "admin":
        branch_ids = (_branch(None).id,)
    data = {"username": username, "display_name": display_name or username, "role": role,
            "branches": list(branch_ids), "password": password}
    _user_made, shown = _call(users.create, data)
    click.echo(f"Created {role} {username}." + (f" Password (shown once): {shown}" if password is None else ""))


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def set_password(username, password):
    """Set a staff account's password; every session of the account ends."""
    _ready()
    user = _user(username)
    _call(users.reset_password, user, password=password)
    click.echo(f"Password of {user.username} changed; every session of {user.username} has ended.")


@user_cli.command("set")
@click.argument("username")
@click.option("--name", "display_name", help="Name shown in the console.")
@click.option("--role", type=click.Choice(StaffUser.ROLES))
@click.option("--branch", "branch_ids", type=int, multiple=True,
              help="Branch id, the home branch first; repeat for several. Replaces the branches.")
@click.option("--language", type=click.Choice(["en", "ja", "ka", "browser"]),
              help="Language of the staff pages; 'browser': the browser's.")
@click.option("--active/--inactive", default=None, help="--inactive signs the person out everywhere at once.")
def set_user(username, display_name, role, branch_ids, language, active):
    """Change a staff account's name, role, branches, language or whether it may sign in."""
    _ready()
    user = _user(username)
    data = {"display_name": display_name, "role": role, "branches": list(branch_ids) or None,
            "language": "" if language == "browser" else language, "active": active}
    _call(users.update, user, {field: value for field, value in data.items() if value is not None})
    click.echo(f"{user.username}: {user.role}, branches {', '.join(map(str, user.branch_ids)) or 'none'}, "
               f"{'active' if user.active else 'deactivated'}.")


@user_cli.command("list")
def list_users():
    """List staff accounts."""
    _ready()
    for user in users.listing():
        branches = ",".join(map(str, user.branch_ids)) or "-"
        state = "" if user.active else "  (deactivated)"
        click.echo(f"{user.id}  {user.username}  {user.display_name!r}  {user.role}  branches={branches}"
                   f"  language={user.language or 'browser'}{state}")
