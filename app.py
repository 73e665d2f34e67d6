"""The app factory: it sits above every package (each knows nothing of it) and puts them together.
run.py and `flask --app run` use it."""
import os

from flask import Flask, render_template

from core import auth, cli, language, logs, metrics
from core.clock import SystemClock
from core.config import load_config
from core.database import MIGRATIONS, configure_engine
from core.extensions import babel, csrf, db, migrate, socketio
from core.security import init_security


def create_app(config=None) -> Flask:
    """Build the app. Never starts threads or opens ports: run.py and the CLI do that."""
    config = dict(config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get("SEED_INSTANCE_PATH")
    app = Flask(
        "core",  # templates, static files and the instance folder are found from core/'s place
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )
    init_config(app, config)
    init_database(app)
    auth.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=language.chosen_language, timezone_selector=language.chosen_zone)
    init_realtime(app)
    init_blueprints(app)
    init_security(app)  # after Socket.IO, so ProxyFix wraps it too
    cli.init_app(app)
    logs.init_app(app)  # a request id on every request's log lines
    metrics.init_app(app)  # /metrics, and what requests and the engine count
    return app


def init_config(app, config) -> None:
    clock = config.pop("CLOCK", None)
    load_config(app, config)
    app.extensions["seed.clock"] = clock or SystemClock()


def init_database(app) -> None:
    from core import models  # noqa: F401  (the tables must be known to the metadata)
    from messaging import models as messaging_models  # noqa: F401  (outbox and inbox tables)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
    with app.app_context():
        configure_engine(db.engine)


def init_realtime(app) -> None:
    # Flask-SocketIO keeps the message-queue manager of an earlier init_app on the extension: an
    # app built after one with Redis would publish there too. Each app chooses its own.
    socketio.server_options.pop("client_manager", None)
    socketio.init_app(app, async_mode=app.config["SOCKETIO_ASYNC_MODE"], message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"],
                      channel=app.config["SOCKETIO_CHANNEL"])


def init_blueprints(app) -> None:
    import admin
    import display
    import hardware
    import kiosk
    import messaging
    import reports
    import scheduler
    import staff

    staff.init_app(app)
    admin.init_app(app)
    reports.init_app(app)
    hardware.init_app(app)
    display.init_app(app)
    kiosk.init_app(app)
    messaging.init_app(app)
    scheduler.init_app(app)

    @app.get("/")
    def index():
        return render_template("staff/home.html")
