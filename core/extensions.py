"""Extensions as unbound globals, bound to an app in create_app."""
import time

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from limits.storage import MemoryStorage
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
socketio = SocketIO()
babel = Babel()
# No default limits: routes that need one (the kiosk's) say so. Storage: RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_limiter(app) -> None:
    """Bind the limiter. Flask-Limiter also checks every request before its view for limits that
    apply app-wide (default, application, meta or a blueprint's); Seed sets none, and the pass
    cost every request, a console's poll or a check-in, about 0.4 million instructions (3 % of a
    check-in) to find none. It runs only while some are set; a route's own limit is checked by
    its decorator either way."""
    limiter.init_app(app)
    if type(limiter._storage) is MemoryStorage:  # RATELIMIT_STORAGE_URI memory:// (the default)
        limiter._storage = SweptMemoryStorage()
        limiter._limiter = type(limiter._limiter)(limiter._storage)
    every_request = limiter._check_request_limit
    hooks = app.before_request_funcs.setdefault(None, [])
    if every_request not in hooks:  # (bound before, to this app: nothing to replace)
        return
    manager = limiter.limit_manager

    def app_wide_limits():
        if manager._default_limits or manager._application_limits or manager._blueprint_limits or limiter._meta_limits:
            every_request()

    hooks[hooks.index(every_request)] = app_wide_limits


class SweptMemoryStorage(MemoryStorage):
    """limits' memory storage, its expired counters swept while counting, at most once a second,
    instead of by a timer thread started again 10 ms after the last: under a steady run of
    check-ins that was a new thread (under gevent a greenlet) for nearly every one, about 4 % of
    the worker's time. A counter's own expiry is still checked at each read (MemoryStorage.get),
    so a window ends when it should; the sweep only frees counters nobody reads any more."""

    STORAGE_SCHEME = ["seed-memory"]  # (limits registers every storage class by its scheme)
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options):
        super().__init__(uri, **options)
        self.timer.cancel()  # (the one MemoryStorage starts; never started again)
        self._swept = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # (MemoryStorage.__schedule_expiry, called at each count)
        now = time.monotonic()
        if now - self._swept >= self.SWEEP_SECONDS:
            self._swept = now
            self._MemoryStorage__expire_events()

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self.timer.cancel()
        self._swept = time.monotonic()
