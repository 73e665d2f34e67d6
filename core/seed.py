"""First-run data: a demo branch a newcomer can use at once."""
import secrets

from flask import current_app
from sqlalchemy import func, select

from . import clock
from .extensions import db
from .models import Branch, Counter, Service, StaffUser

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def database_is_empty() -> bool:
    return db.session.scalar(select(func.count(Branch.id))) == 0


def seed_demo() -> str | None:
    """On an empty database: branch, services A and B, counters 1-3, an admin.
    Returns the admin's generated password (shown once), or None when nothing was seeded."""
    if not database_is_empty():
        return None
    config = current_app.config
    now = clock.now()
    branch = Branch(
        name=config["DEFAULT_BRANCH_NAME"],
        sender_name=config["DEFAULT_BRANCH_NAME"],
        timezone=config["DEFAULT_TIMEZONE"],
        country=config["DEFAULT_COUNTRY"],
        default_language=config["DEFAULT_LANGUAGE"],
        opening_hours={day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]},
        created_at=now,
    )
    general = Service(branch=branch, code="A", name="General", avg_service_minutes=5, position=1,
                      names={"en": "General", "ja": "総合窓口", "ka": "ზოგადი მომსახურება"})
    appointments = Service(branch=branch, code="B", name="Appointments", avg_service_minutes=10, position=2,
                           names={"en": "Appointments", "ja": "予約の方", "ka": "ჩაწერილი ვიზიტები"})
    counters = [
        Counter(branch=branch, name="1", services=[general, appointments]),
        Counter(branch=branch, name="2", services=[general, appointments]),
        Counter(branch=branch, name="3", services=[general]),
    ]
    password = secrets.token_urlsafe(12)
    admin = StaffUser(username="admin", display_name="Administrator", role="admin", created_at=now)
    admin.set_password(password)
    db.session.add_all([branch, general, appointments, *counters, admin])
    db.session.commit()
    return password
