"""Configuration: defaults here, then instance/config.py, then environment variables,
then the mapping passed to create_app (tests). One place per fact."""
import os
import secrets
from pathlib import Path

from . import zones


class Defaults:
    # Filled in by load_config when still None: sqlite in the instance folder.
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}  # on PostgreSQL, POSTGRES_POOL fills in what is not given
    SECRET_KEY = None
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # a console stays open all day; the token lives as long as the session
    MAX_CONTENT_LENGTH = 1 * 1024 * 1024
    # Werkzeug's strong default; tests set a cheap one so a login does not cost 100 ms.
    PASSWORD_HASH_METHOD = "scrypt"
    STAFF_IDLE_MINUTES = 480  # a staff session ends after this long without a request (a working day)
    API_BASIC_AUTH = False  # HTTP Basic on /api costs a password hash per request; API tokens replace it

    # The demo branch seeded into an empty database by run.py.
    SEED_DEMO_ON_EMPTY = True
    DEFAULT_BRANCH_NAME = "Demo Branch"
    DEFAULT_TIMEZONE = "UTC"
    DEFAULT_COUNTRY = "GB"
    DEFAULT_LANGUAGE = "en"

    # Wait estimates: how many recent completions of a service to average, how far back,
    # and how few are too few to trust (then the service's configured average is used).
    ESTIMATE_SAMPLE_SIZE = 10
    ESTIMATE_WINDOW_HOURS = 8
    ESTIMATE_MIN_SAMPLES = 3

    # Running late: the default and the longest a ticket may be skipped.
    LATE_DEFAULT_MINUTES = 15
    LATE_MAX_MINUTES = 240

    # The outbox: how long a gateway holds a claimed text, how often and how patiently it retries.
    OUTBOX_LEASE_SECONDS = 120
    OUTBOX_RETRY_SECONDS = 30  # doubled after each failed attempt, at most 15 minutes
    OUTBOX_MAX_ATTEMPTS = 8
    INBOX_REASSEMBLY_MINUTES = 10  # parts of a long text still missing after this are joined as they are

    # The modem. No port: the virtual modem (development, demo, tests).
    MODEM_PORT = None  # "/dev/ttyUSB0", "/dev/serial/by-id/usb-HUAWEI_...", or "imei:356938035643809"
    MODEM_BAUDRATE = 115200
    MODEM_PIN = None
    MODEM_SMSC = None  # leave None to use the SIM's
    MODEM_BRANCH_ID = None  # None: this gateway sends every branch's texts
    MODEM_SWEEP_SECONDS = 30  # read stored messages this often, in case a notification was lost
    MODEM_HEALTH_SECONDS = 30
    MODEM_RECONNECT_MAX_SECONDS = 60
    # None: the short stable id made from the port (hardware/gateway.gateway_id); it names the
    # gateway's leases in the outbox, so keep it when the port changes.
    MODEM_NAME = None
    MODEM_RATE_PER_MINUTE = 30  # text parts a minute at most, per modem (carriers block bursts); 0: no limit
    MODEM_FAILURES_BEFORE_COOLING = 3  # refused sends in a row before a modem is set aside...
    MODEM_COOLDOWN_SECONDS = 300  # ...for this long, while other modems take over
    # Where to look for a modem whose port vanished (it is recognised by its IMEI).
    MODEM_SEARCH_PATHS = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")
    MODEM_DEGRADED_AFTER_SECONDS = 180  # a gateway not ready for longer makes health say "degraded"
    VIRTUAL_MODEM_LATENCY = 3.0  # seconds per text part, like a real network
    VIRTUAL_MODEM_PROFILE = "default"  # see hardware/virtual_modem.py: sim800, huawei, ...

    # Kiosk: a stuck key or a loop must not flood the queue. Per registered kiosk (X-Kiosk-Token,
    # see /staff/admin/kiosks), else per client address.
    KIOSK_RATE_LIMIT = "12 per minute"
    KIOSK_PHONE_CHECK_LIMIT = "60 per minute"
    STATUS_ACTION_RATE_LIMIT = "6 per minute"  # the status page's late/cancel buttons, per ticket
    STATUS_ACTION_ADDRESS_RATE_LIMIT = "60 per minute"  # and per address (a waiting room shares one Wi-Fi)
    # Online self-booking (kiosk/booking.py): its pages per address, each booking or change per
    # address, bookings per mobile number, and changes per customer's link.
    BOOKING_PAGE_RATE_LIMIT = "120 per minute"
    BOOKING_RATE_LIMIT = "20 per hour"
    BOOKING_PHONE_RATE_LIMIT = "5 per hour"
    BOOKING_CHANGE_RATE_LIMIT = "10 per hour"
    # The address customers reach Seed at (https://queue.example.org): links in texts are built on
    # it, never on a request's Host header. None: the request's address (a branch box on its own).
    PUBLIC_URL = None
    RATELIMIT_STORAGE_URI = "memory://"  # redis://... when several web processes share the limits (REDIS_URL fills it)
    RATELIMIT_HEADERS_ENABLED = True
    KIOSK_IDLE_SECONDS = 30  # no touch for this long on any screen but the first: warn
    KIOSK_IDLE_WARNING_SECONDS = 20  # then count down this long, extendable, before starting over (WCAG 2.2.1: >= 20 s)
    KIOSK_TICKET_SECONDS = 25  # the ticket screen asks "still there?" after this long, then returns to the start

    # Texts each branch sends, and the policy they obey; a branch's `messaging` settings override.
    MESSAGING_DEFAULTS = {
        "welcome": True, "position": True, "next": True, "called": True, "no_show": True, "survey": True,
        "position_threshold": 3,  # one "nearly your turn" text when this many or fewer are ahead
        "survey_delay_minutes": 60,  # 0, 60, 1440 or any number
        "survey_dedupe_days": 30,  # at most one survey per number in this many days
        "quiet_start": "20:00", "quiet_end": "09:00",  # branch-local; surveys and reminders wait
        "daily_cap": 10,  # texts per number per branch-local day
        "duplicate_seconds": 60,  # the same text to the same number within this is dropped
        "reminder_lead_minutes": [1440, 120],  # appointment reminders: 24 h and 2 h before
    }
    RESCHEDULE_OFFER_MINUTES = 30  # how long offered slots wait for an answer
    RESCHEDULE_AFTER_CANCEL_DAYS = 7  # R after a cancellation offers new times for this long after its day
    # Checking in for an appointment: before its time the ticket waits for it; more than the grace
    # after it, the branch decides: "priority" keeps appointment priority, "walk_in" queues as a walk-in.
    APPOINTMENT_PRIORITY = 10
    APPOINTMENT_LATE_GRACE_MINUTES = 15
    APPOINTMENT_LATE_POLICY = "walk_in"

    # Ticket printer (python-escpos); None: no printer. See hardware/printer.py for the forms,
    # e.g. {"kind": "network", "host": "192.168.1.50"} or {"kind": "file", "path": "/tmp/tickets.bin"}.
    PRINTER = None

    # Translations (Flask-Babel): English, Japanese, Georgian.
    LANGUAGES = ("en", "ja", "ka")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_TRANSLATION_DIRECTORIES = str(Path(__file__).resolve().parent.parent / "translations")

    # Flask-SocketIO: None in one process; redis://... when several processes share displays
    # (REDIS_URL fills it).
    SOCKETIO_MESSAGE_QUEUE = None
    SOCKETIO_ASYNC_MODE = "threading"  # run.py serves with gevent: an open socket costs no thread
    SOCKETS_PER_ADDRESS = 100  # open Socket.IO connections one client address may hold; 0: no cap
    SOCKETIO_CHANNEL = "seed"  # one per installation sharing a Redis server; also the prefix of our other Redis keys

    # Scaled out: several web processes, a scheduler and a gateway per modem (README, "Deploying").
    # The one Redis they share: where SOCKETIO_MESSAGE_QUEUE and RATELIMIT_STORAGE_URI are left at
    # their defaults, REDIS_URL fills them.
    REDIS_URL = None
    # One active scheduler, and one process per modem's gateway, at a time (core/leader.py): "auto"
    # is an advisory lock on PostgreSQL and a lock file in instance/ on SQLite; "redis" a key with
    # an expiry on REDIS_URL.
    LEADER_LOCK = "auto"
    LEADER_RETRY_SECONDS = 5.0  # a standby tries to take over this often; the active one checks its lock as often
    LEADER_LEASE_SECONDS = 15.0  # a holder whose host vanished loses the lock after about this (expiry, keepalives)
    SCHEDULER_JOB_SECONDS: dict = {}  # {job id: seconds}: a job more or less often than scheduler/jobs.py says

    # Backups (core/backups.py): `flask --app run backup`, and one each night from the scheduler.
    BACKUP_KEEP = 0  # nightly backups kept; 0: no nightly backups
    BACKUP_DIR = None  # None: backups/ in the instance folder
    BACKUP_TIME = "03:00"  # the night's backup is due after this time of day, in DEFAULT_TIMEZONE
    PG_BIN_DIR = None  # the folder of pg_dump and pg_restore; None: the PATH

    # Personal data (core/privacy.py) and the audit log (core/audit.py). Numbers, names and the
    # words of finished visits are anonymised this many days after the visit, keeping the figures;
    # the scheduler's job does at most RETENTION_BATCH rows per table per run.
    RETENTION_DAYS = 90
    RETENTION_BATCH = 1000

    # Security (core/security.py). Proxies in front of Seed whose X-Forwarded-For/-Proto/-Host
    # are believed: 0 believes none, so a client cannot claim another address (e.g. loopback).
    TRUSTED_PROXIES = 0
    CSP_EMBED_ANCESTORS = "'self'"  # who may frame views marked @embeddable; others: nobody

    # Seen from outside (README, "Operating"). /metrics answers loopback only, or whoever sends
    # "Authorization: Bearer <METRICS_TOKEN>" when one is set.
    METRICS_TOKEN = None
    LOG_FORMAT = "text"  # "json": one JSON object per line (request id, branch, numbers masked)
    LOG_LEVEL = "INFO"


# Environment variables read at start, name -> config key.
ENVIRONMENT = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "SOCKETIO_MESSAGE_QUEUE": "SOCKETIO_MESSAGE_QUEUE",
    "SOCKETIO_CHANNEL": "SOCKETIO_CHANNEL",
    "SOCKETS_PER_ADDRESS": "SOCKETS_PER_ADDRESS",
    "REDIS_URL": "REDIS_URL",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "LEADER_LOCK": "LEADER_LOCK",
    "PUBLIC_URL": "PUBLIC_URL",
    "BACKUP_KEEP": "BACKUP_KEEP",
    "BACKUP_DIR": "BACKUP_DIR",
    "SEED_TIMEZONE": "DEFAULT_TIMEZONE",
    "SEED_COUNTRY": "DEFAULT_COUNTRY",
    "SEED_BRANCH_NAME": "DEFAULT_BRANCH_NAME",
    "MODEM_PORT": "MODEM_PORT",
    "MODEM_PIN": "MODEM_PIN",
    "MODEM_NAME": "MODEM_NAME",
    # Security (core/security.py).
    "TRUSTED_PROXIES": "TRUSTED_PROXIES",
    # Seen from outside.
    "METRICS_TOKEN": "METRICS_TOKEN",
    "LOG_FORMAT": "LOG_FORMAT",
    "LOG_LEVEL": "LOG_LEVEL",
}


# A process's connections to PostgreSQL. Its requests share one core (gevent), so a few
# connections keep it busy; with SQLAlchemy's default (5, and 10 more opened and closed again
# when busy) 32 kiosks at once had 15 transactions running: each burst forked ten new server
# processes, and the busy ones took turns on two cores with the process serving them. The
# machine spent a third more per check-in and the last kiosk waited longer (bench/README.md).
# A request beyond these waits its turn for a connection (pool_timeout s, then an error).
POSTGRES_POOL = {"pool_size": 8, "max_overflow": 0, "pool_timeout": 30}


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// (as hosting platforms write them) use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(app, overrides=None) -> None:
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for env_name, key in ENVIRONMENT.items():
        if os.environ.get(env_name):
            app.config[key] = os.environ[env_name]
    if overrides:
        app.config.update(overrides)

    instance = Path(app.instance_path)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        instance.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'seed.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # instance/config.py's own choices win, key by key
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**POSTGRES_POOL, **(app.config["SQLALCHEMY_ENGINE_OPTIONS"] or {})}
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(instance)
    share_redis(app.config)
    check_timezone(app.config["DEFAULT_TIMEZONE"])


def share_redis(config) -> None:
    """REDIS_URL as the default of what processes share through Redis. Limits kept there fall back
    to each process's memory while Redis is away (a check-in must not fail for it); their keys are
    prefixed with the installation's channel, like the Socket.IO messages."""
    url = config.get("REDIS_URL")
    if url:
        if not config.get("SOCKETIO_MESSAGE_QUEUE"):
            config["SOCKETIO_MESSAGE_QUEUE"] = url
        if config.get("RATELIMIT_STORAGE_URI") in (None, "", "memory://"):
            config["RATELIMIT_STORAGE_URI"] = url
    if str(config.get("RATELIMIT_STORAGE_URI") or "").startswith(("redis://", "rediss://", "redis+")):
        config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        config.setdefault("RATELIMIT_KEY_PREFIX", f"{config['SOCKETIO_CHANNEL']}:limits")


class ConfigError(SystemExit):
    """A setting the system cannot start with. A SystemExit: run.py, `flask` and a WSGI server
    stop with this message and nothing else, instead of starting and failing later (an unknown
    zone made every check-in a 500)."""

    def __init__(self, message: str):
        super().__init__(f"Seed cannot start: {message}")


def check_timezone(name) -> None:
    """DEFAULT_TIMEZONE (SEED_TIMEZONE in the environment) names a real zone, or the start stops."""
    if zones.is_zone(name):
        return
    close = zones.suggestions(str(name))
    hint = f" Did you mean {' or '.join(close)}?" if close else " Use an IANA name like Asia/Tbilisi or Asia/Tokyo."
    raise ConfigError(f"SEED_TIMEZONE (DEFAULT_TIMEZONE) is {name!r}, which is not a time zone.{hint}")


def _instance_secret_key(instance: Path) -> str:
    """Generated once per installation and kept in instance/, never in the code."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
