"""Personal data and the audit log."""
import json
from types import SimpleNamespace

import click

from .. import audit, privacy
from . import _ready, _told, audit_cli, privacy_cli


# Whoever runs the command line owns the installation: it reaches every branch (core/scope.py).
OPERATOR = SimpleNamespace(is_authenticated=True, role="admin", branch_ids=[])


def _person(call):
    _ready()
    return _told(call)


@privacy_cli.command("export")
@click.argument("phone")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="A file (default: the terminal).")
def export_person(phone, output):
    """Everything held about PHONE (international form, +995...) as JSON."""
    found = _person(lambda: privacy.export(phone, OPERATOR))
    json.dump(found, output, ensure_ascii=False, indent=2)
    output.write("\n")
    audit.record("data.exported", target=privacy.target(found["phone"]),
                 detail={key: len(rows) for key, rows in found.items() if isinstance(rows, list) and rows})


@privacy_cli.command("erase")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Erase without asking.")
def erase_person(phone, yes):
    """Erase PHONE everywhere: its texts, tickets, appointments, surveys; queued texts are cancelled."""
    held = _person(lambda: privacy.summary(phone, OPERATOR))
    click.echo("Held: " + ", ".join(f"{key} {count}" for key, count in held.items() if count))
    if not yes:
        click.confirm(f"Erase everything about {privacy.masked(phone)}? It cannot be undone", abort=True)
    erased = _person(lambda: privacy.erase(phone, OPERATOR))
    audit.record("data.erased", target=privacy.target(phone), detail=erased)
    click.echo("Erased: " + (", ".join(f"{key} {count}" for key, count in erased.items()) or "nothing"))


@privacy_cli.command("anonymise")
def anonymise_now():
    """Run the retention job once now (it also runs by itself in the scheduler)."""
    done = _person(privacy.anonymise)
    if done:
        audit.record("data.anonymised", detail=done)
    click.echo("Anonymised: " + (", ".join(f"{key} {count}" for key, count in done.items()) or "nothing due"))


@audit_cli.command("list")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC), e.g. 2026-03-01.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC).")
@click.option("--action", type=click.Choice(audit.ACTIONS))
@click.option("--branch", "branch_id", type=int)
@click.option("--limit", type=click.IntRange(1, audit.CSV_LIMIT), default=50, show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8 with BOM) instead of lines.")
def list_audit(since, until, action, branch_id, limit, as_csv):
    """The newest entries first."""
    _ready()
    statement = audit.query(since=since and since.date(), until=until and until.date(), action=action,
                            branch_id=branch_id, user=OPERATOR)
    entries, _older = audit.page(statement, limit=limit)
    if as_csv:
        click.echo(audit.to_csv(entries), nl=False)
        return
    for e in entries:
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.role or '-'}  branch {e.branch_id or '-'}  {e.action}  "
                   f"{e.target or '-'}  {json.dumps(e.detail, ensure_ascii=False)}")
