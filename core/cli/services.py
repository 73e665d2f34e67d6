"""Services and counters."""
import re

import click

from .. import audit
from ..extensions import db
from ..models import Counter, Service
from . import _branch, _given, _ready, _services, counter_cli, service_cli


@service_cli.command("create")
@click.argument("code")
@click.argument("name")
@click.option("--minutes", type=click.IntRange(1, 480), default=5, show_default=True, help="Average service time.")
@click.option("--counters", default="", help="Counters that serve it, e.g. 1,2.")
@click.option("--slot-minutes", type=click.IntRange(5, 480), default=15, show_default=True, help="Appointment slot length.")
@click.option("--capacity", type=click.IntRange(1, 100), default=1, show_default=True, help="Appointments per slot.")
@click.option("--branch", "branch_id", type=int)
def create_service(code, name, minutes, counters, slot_minutes, capacity, branch_id):
    """Create a service; CODE is the ticket prefix letter."""
    _ready()
    code = code.upper()
    if not re.fullmatch(r"[A-Z]", code):
        raise click.ClickException("The code is one letter A-Z: it prefixes the ticket numbers.")
    if not 1 <= len(name.strip()) <= 80:
        raise click.ClickException("The name needs 1-80 characters.")
    branch = _branch(branch_id)
    if any(s.code == code for s in branch.services):
        raise click.ClickException(f"{branch.name} has a service {code} already.")
    by_name = {c.name: c for c in branch.counters}
    wanted = [n.strip() for n in counters.split(",") if n.strip()]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise click.ClickException(f"Unknown counter(s): {', '.join(missing)}")
    service = Service(branch=branch, code=code, name=name.strip(), avg_service_minutes=minutes,
                      slot_minutes=slot_minutes, slot_capacity=capacity)
    db.session.add(service)
    for counter_name in wanted:
        by_name[counter_name].services.append(service)
    db.session.commit()
    audit.record("settings.changed", target=f"service:{service.id}", branch_id=branch.id, detail={"created": code})
    click.echo(f"Created service {code} ({service.name}) at {branch.name}.")


@service_cli.command("set")
@click.argument("code")
@click.option("--name")
@click.option("--minutes", type=click.IntRange(1, 480), help="Average service time.")
@click.option("--slot-minutes", type=click.IntRange(5, 480), help="Appointment slot length.")
@click.option("--capacity", type=click.IntRange(1, 100), help="Appointments per slot.")
@click.option("--active/--inactive", default=None)
@click.option("--branch", "branch_id", type=int)
def set_service(code, name, minutes, slot_minutes, capacity, active, branch_id):
    """Change a service."""
    _ready()
    branch = _branch(branch_id)
    (service,) = _services(branch, code)
    if name is not None:
        if not 1 <= len(name.strip()) <= 80:
            raise click.ClickException("The name needs 1-80 characters.")
        service.name = name.strip()
    for attr, value in (("avg_service_minutes", minutes), ("slot_minutes", slot_minutes),
                        ("slot_capacity", capacity), ("active", active)):
        if value is not None:
            setattr(service, attr, value)
    db.session.commit()
    audit.record("settings.changed", target=f"service:{service.id}", branch_id=branch.id,
                 detail={"fields": _given(name=name, minutes=minutes, slot_minutes=slot_minutes, capacity=capacity,
                                          active=active)})
    click.echo(f"Saved service {service.code}.")


@service_cli.command("list")
@click.option("--branch", "branch_id", type=int)
def list_services(branch_id):
    """List the branch's services and the counters serving each."""
    _ready()
    branch = _branch(branch_id)
    for s in branch.services:
        state = "" if s.active else " (inactive)"
        counters = ", ".join(c.name for c in s.counters) or "no counter"
        click.echo(f"{s.code}  {s.name}{state}  ~{s.avg_service_minutes} min  counters: {counters}  "
                   f"slots: {s.slot_minutes} min x {s.slot_capacity}")


@counter_cli.command("create")
@click.argument("name")
@click.option("--services", required=True, help="Service codes it serves, e.g. A,B.")
@click.option("--branch", "branch_id", type=int)
def create_counter(name, services, branch_id):
    """Create a counter."""
    _ready()
    branch = _branch(branch_id)
    if not re.fullmatch(r"[\w .-]{1,20}", name):
        raise click.ClickException("Counter names are 1-20 letters, digits, spaces, dots or dashes.")
    if any(c.name == name for c in branch.counters):
        raise click.ClickException(f"{branch.name} has a counter {name} already.")
    counter = Counter(branch=branch, name=name, services=_services(branch, services))
    db.session.add(counter)
    db.session.commit()
    audit.record("settings.changed", target=f"counter:{counter.id}", branch_id=branch.id, detail={"created": name})
    click.echo(f"Created counter {name} at {branch.name}.")
