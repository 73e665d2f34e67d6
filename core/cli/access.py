"""API tokens and registered kiosks."""
import secrets

import click

from .. import audit, clock, tokens
from . import _ready, _told, kiosk_cli, token_cli


def _describe(token, now) -> str:
    reach = "every branch" if token.role == "admin" else "branches " + ",".join(str(b.id) for b in token.branches)
    used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
    until = f" until {token.expires_at:%Y-%m-%d}" if token.expires_at and token.state(now) == "active" else ""
    return (f"{token.id}  {token.name}  {token.role}  {reach}  {token.hint}...  {token.state(now)}{until}  "
            f"last used: {used} UTC")


def _created(make):
    _ready()
    return _told(make)


@token_cli.command("create")
@click.option("--name", required=True, help="Which system uses it, e.g. 'Booking website'.")
@click.option("--role", type=click.Choice(tokens.ROLES), default="staff", show_default=True)
@click.option("--branch", "branch_ids", type=int, multiple=True, help="A branch it may use; repeat for more.")
@click.option("--expires-days", type=click.IntRange(1, tokens.MAX_EXPIRY_DAYS), help="Leave out: never expires.")
def create_token(name, role, branch_ids, expires_days):
    """Create an API token; it is printed once and cannot be shown again."""
    token, secret = _created(lambda: tokens.create(name, role, branch_ids, expires_days=expires_days))
    audit.token("token.created", token)
    click.echo(f"Created: {_describe(token, clock.now())}")
    click.echo(f"Token (shown once; send it as 'Authorization: Bearer <token>'): {secret}")


@token_cli.command("list")
def list_tokens():
    """List API tokens (never their secrets)."""
    _list(kiosks=False)


def _list(kiosks):
    _ready()
    now = clock.now()
    for token in tokens.listing(kiosks=kiosks):
        click.echo(_describe(token, now))


def _revoke(token_id, kiosk):
    _ready()
    token = _told(tokens.revoke, token_id, kiosk=kiosk)
    audit.token("kiosk.revoked" if kiosk else "token.revoked", token)
    click.echo(f"Revoked: {_describe(token, clock.now())}")


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id):
    """Revoke an API token: its next request is refused."""
    _revoke(token_id, kiosk=False)


@kiosk_cli.command("create")
@click.option("--branch", "branch_id", type=int, required=True)
@click.option("--name", required=True, help="Where it stands, e.g. 'Entrance'.")
@click.option("--url", help="The address kiosks open Seed at, e.g. http://192.168.1.10:5000: prints the "
                            "whole setup link and its QR code.")
def create_kiosk(branch_id, name, url):
    """Register a kiosk; its setup link is printed once."""
    kiosk, secret = _created(lambda: tokens.create_kiosk(branch_id, name))
    audit.token("kiosk.registered", kiosk)
    # After '#': a browser never sends it, so the token stays out of access logs.
    link = f"{(url or '').rstrip('/')}/kiosk/{branch_id}#setup={secret}"
    click.echo(f"Registered: {_describe(kiosk, clock.now())}")
    click.echo(f"Setup link (shown once; open it on the kiosk{'' if url else ' after the address of Seed'}): {link}")
    if url:
        import segno

        segno.make(link, error="m").terminal(compact=True)


@kiosk_cli.command("list")
def list_kiosks():
    """List registered kiosks."""
    _list(kiosks=True)


@kiosk_cli.command("revoke")
@click.argument("kiosk_id", type=int)
def revoke_kiosk(kiosk_id):
    """Revoke a kiosk's registration: it shares the limit of its address again."""
    _revoke(kiosk_id, kiosk=True)
