"""Services and counters: the same service layer as the settings pages (core/settings)."""
import click

from ..settings import counters as counter_settings
from ..settings import services as settings
from . import _branch, _call, _ready, _services, counter_cli, service_cli

NUMBER_OPTIONS = {  # option -> the service's field
    "minutes": "avg_service_minutes", "target": "target_wait_minutes", "priority": "priority",
    "position": "position", "slot_minutes": "slot_minutes", "capacity": "slot_capacity",
}


def _names(default_name, name_ja, name_ka, names, default_language) -> dict:
    """NAME is in the branch's language; --name-ja, --name-ka and --names ja=... add the others."""
    given = {}
    for pair in names:
        language, sep, name = pair.partition("=")
        if not sep:
            raise click.ClickException(f"--names takes language=name, e.g. ja=会計, not {pair!r}.")
        given[language.strip()] = name
    if default_name is not None:
        given[default_language] = default_name
    given.update({lang: name for lang, name in (("ja", name_ja), ("ka", name_ka)) if name is not None})
    return given


def _counter_ids(branch, names: str) -> list[int]:
    by_name = {c.name: c for c in branch.counters}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise click.ClickException(f"Unknown counter(s) at {branch.name}: {', '.join(missing)}")
    return [by_name[n].id for n in wanted]


def _counter(branch, name: str):
    counter = next((c for c in branch.counters if c.name == name), None)
    if counter is None:
        raise click.ClickException(f"Unknown counter at {branch.name}: {name}")
    return counter


def _service_fields(branch, *, name=None, name_ja=None, name_ka=None, names=(), counters=None, **numbers) -> dict:
    data = {NUMBER_OPTIONS[option]: value for option, value in numbers.items() if value is not None}
    given = _names(name, name_ja, name_ka, names, branch.default_language)
    if given:
        data["names"] = given
    if counters is not None:
        data["counters"] = _counter_ids(branch, counters)
    return data


def service_options(command):
    """The options `service create` and `service set` share."""
    for option in reversed((
        click.option("--name-ja", help="The name in Japanese."),
        click.option("--name-ka", help="The name in Georgian."),
        click.option("--names", multiple=True, help="A name in a language, e.g. --names ja=会計 (repeatable)."),
        click.option("--minutes", type=int, help="Average minutes per customer (1-480)."),
        click.option("--target", type=int, help="Target wait in minutes, for reports (1-480)."),
        click.option("--priority", type=int, help="Starting priority of its tickets (0-9, higher first)."),
        click.option("--position", type=int, help="Place on the kiosk (0-999, smallest first)."),
        click.option("--counters", help="Names of the counters that serve it, e.g. 1,2."),
        click.option("--slot-minutes", type=int, help="Appointment slot length (5-480)."),
        click.option("--capacity", type=int, help="Appointments per slot (1-100)."),
        click.option("--branch", "branch_id", type=int),
    )):
        command = option(command)
    return command


@service_cli.command("create")
@click.argument("code")
@click.argument("name")
@service_options
@click.option("--paused", is_flag=True, help="Shown as paused on the kiosk; takes no tickets yet.")
def create_service(code, name, branch_id, paused, **options):
    """Create a service; CODE is the ticket prefix letter, NAME its name in the branch's language."""
    _ready()
    branch = _branch(branch_id)
    data = {"code": code, "active": not paused, **_service_fields(branch, name=name, **options)}
    service = _call(settings.create, branch, data)
    click.echo(f"Created service {service.code} ({service.name}) at {branch.name}.")


@service_cli.command("set")
@click.argument("code")
@click.option("--code", "new_code", help="A new code (not on a day the service has tickets).")
@click.option("--name", help="The name in the branch's language.")
@service_options
@click.option("--active/--paused", default=None, help="Taking tickets, or paused.")
def set_service(code, new_code, name, branch_id, active, **options):
    """Change a service: only the options given."""
    _ready()
    branch = _branch(branch_id)
    (service,) = _services(branch, code)
    data = _service_fields(branch, name=name, **options)
    if new_code is not None:
        data["code"] = new_code
    if active is not None:
        data["active"] = active
    service = _call(settings.update, service, data)
    click.echo(f"Saved service {service.code}.")


@service_cli.command("list")
@click.option("--branch", "branch_id", type=int)
def list_services(branch_id):
    """The branch's services in kiosk order, with the counters serving each."""
    _ready()
    branch = _branch(branch_id)
    for s in settings.in_kiosk_order(branch):
        state = "" if s.active else " (paused)"
        counters = ", ".join(c.name for c in s.counters) or "no counter"
        others = "".join(f"  {lang}: {name}" for lang, name in sorted((s.names or {}).items())
                         if lang != branch.default_language)
        click.echo(f"{s.code}  {s.name}{state}  ~{s.avg_service_minutes} min  counters: {counters}  "
                   f"slots: {s.slot_minutes} min x {s.slot_capacity}  target: {s.target_wait_minutes} min  "
                   f"priority: {s.priority}  position: {s.position}{others}")


@counter_cli.command("create")
@click.argument("name")
@click.option("--services", required=True, help="Service codes it serves, e.g. A,B.")
@click.option("--branch", "branch_id", type=int)
def create_counter(name, services, branch_id):
    """Create a counter."""
    _ready()
    branch = _branch(branch_id)
    data = {"name": name, "services": [s.id for s in _services(branch, services)]}
    counter = _call(counter_settings.create, branch, data)
    click.echo(f"Created counter {counter.name} at {branch.name}.")


@counter_cli.command("set")
@click.argument("name")
@click.option("--name", "new_name", help="A new name.")
@click.option("--services", help="Service codes it serves, e.g. A,B (replaces the list).")
@click.option("--branch", "branch_id", type=int)
def set_counter(name, new_name, services, branch_id):
    """Rename a counter or change the services it serves."""
    _ready()
    branch = _branch(branch_id)
    counter = _counter(branch, name)
    data = {}
    if new_name is not None:
        data["name"] = new_name
    if services is not None:
        data["services"] = [s.id for s in _services(branch, services)]
    counter = _call(counter_settings.update, counter, data)
    click.echo(f"Saved counter {counter.name}.")


@counter_cli.command("delete")
@click.argument("name")
@click.option("--branch", "branch_id", type=int)
def delete_counter(name, branch_id):
    """Delete a counter that never served a ticket (one that did stays: rename it)."""
    _ready()
    branch = _branch(branch_id)
    counter = _counter(branch, name)
    _call(counter_settings.delete, counter)
    click.echo(f"Deleted counter {name} at {branch.name}.")
