"""Run the whole system on its embedded defaults: `python run.py [--host H] [--port P]`.

Also the target of `flask --app run ...` commands (Flask finds create_app here).
"""
import argparse
import logging
import sys

from gunicorn.app.base import BaseApplication

from core import create_app  # noqa: F401  (flask --app run finds the factory here)
from core.database import upgrade_database
from core.extensions import db
from core.seed import seed_demo


class Server(BaseApplication):
    """Gunicorn with one threaded worker: production-grade HTTP and WebSocket (Flask-SocketIO's
    threading mode), one process so the in-process scheduler and modem gateway exist once."""

    def __init__(self, app, options):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def start_in_worker(app):
    """gunicorn hooks: the modem gateway (and its virtual modem) and the scheduler live in the
    one worker process, started after the fork."""
    import hardware
    import scheduler

    def post_worker_init(_worker):
        hardware.start(app)
        scheduler.start(app)

    def worker_exit(_server, _worker):
        scheduler.stop(app)
        hardware.stop(app)

    return {"post_worker_init": post_worker_init, "worker_exit": worker_exit}


def prepare(app) -> None:
    """Upgrade the schema and, on an empty database, seed the demo branch."""
    upgrade_database(app)
    with app.app_context():
        password = seed_demo()
        if password:
            print(
                "\n  Seeded a demo branch: services A (General) and B (Appointments), counters 1-3.\n"
                f"  Admin login: admin / {password}\n"
                "  This password is shown once. Change it: flask --app run user set-password admin\n",
                flush=True,
            )
        # No database connection may cross the fork into the worker.
        db.engine.dispose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run Seed: web app, displays and console on one port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--threads", type=int, default=64, help="worker threads (each open display holds one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = create_app()
    prepare(app)
    print(f"  Seed is running: http://{args.host}:{args.port}/  (staff console: /staff/, health: /api/v1/health)", flush=True)
    if not app.config["MODEM_PORT"]:
        print(f"  No modem configured: texts go to the virtual modem; see them at http://{args.host}:{args.port}/virtual-phone", flush=True)
    Server(
        app,
        {
            "bind": f"{args.host}:{args.port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": args.threads,
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
            # A per-user control socket would collide between two instances on one machine.
            "control_socket_disable": True,
            **start_in_worker(app),
        },
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
