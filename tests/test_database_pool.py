"""A process's connections to PostgreSQL (core.config.POSTGRES_POOL): a few, kept open. A burst of
kiosks waits its turn for one of them instead of opening more (each a new server process on
PostgreSQL's side, closed again after the burst), and every kiosk still gets its ticket, with a
year's report running on a native thread meanwhile (run.OffTheHub)."""
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from core.config import POSTGRES_POOL
from core.extensions import db

from .live import RunningSystem

KIOSKS = 24  # three times the pool


@pytest.fixture
def pool_database():
    from .conftest import new_postgres_database

    with new_postgres_database("seed_pool") as url:
        yield url


def test_a_postgresql_pool_is_a_few_kept_connections_and_instance_config_wins(tmp_path, pool_database):
    made = create_app({"SQLALCHEMY_DATABASE_URI": pool_database, "INSTANCE_PATH": str(tmp_path / "a")})
    with made.app_context():
        assert (db.engine.pool.size(), db.engine.pool._max_overflow, db.engine.pool._timeout) == (8, 0, 30)
        db.engine.dispose()
    instance = tmp_path / "b"
    instance.mkdir()
    (instance / "config.py").write_text('SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 3, "pool_recycle": 600}\n')
    made = create_app({"SQLALCHEMY_DATABASE_URI": pool_database, "INSTANCE_PATH": str(instance)})
    with made.app_context():
        assert (db.engine.pool.size(), db.engine.pool._max_overflow, db.engine.pool._recycle) == (3, 0, 600)
        db.engine.dispose()
    assert POSTGRES_POOL["pool_size"] == 8  # the default is not changed by an instance's choice
    lite = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'seed.db'}",
                       "INSTANCE_PATH": str(tmp_path / "c")})
    assert "pool_size" not in lite.config["SQLALCHEMY_ENGINE_OPTIONS"]


def test_a_burst_of_kiosks_on_postgresql_opens_no_connection_and_every_kiosk_gets_its_ticket(tmp_path, pool_database):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('KIOSK_RATE_LIMIT = "100000 per minute"\n')
    system = RunningSystem(instance, env={"DATABASE_URL": pool_database}).start(timeout=90)
    watcher = create_engine(pool_database, isolation_level="AUTOCOMMIT")
    try:
        system.api_token()  # (made before the burst: the CLI, not the server, makes it)
        numbers = iter(range(10**6))
        lock = threading.Lock()

        def burst(reports: int = 0):
            """KIOSKS check-ins at the same moment (every other one texting), and `reports`
            requests for a year's report among them; (check-in answers, report statuses)."""
            barrier = threading.Barrier(KIOSKS + reports)
            answers, statuses = [], []

            def kiosk(texting):
                with lock:
                    n = next(numbers)
                fields = {"phone": f"+995577{n:06d}", "sms_consent": True} if texting else {}
                barrier.wait()
                status, body, _headers = system.request("POST", "/api/v1/checkins", {"service": "A", "branch": 1, **fields})
                answers.append((status, body))

            def report():
                barrier.wait()
                statuses.append(system.request("GET", "/api/v1/reports/summary?branch=1&from=2026-01-01&to=2026-12-31",
                                               auth=True)[0])

            threads = [threading.Thread(target=kiosk, args=(i % 2 == 0,)) for i in range(KIOSKS)]
            threads += [threading.Thread(target=report) for _ in range(reports)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(90)
            assert not any(thread.is_alive() for thread in threads)
            return answers, statuses

        def backends(connection):
            return set(connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")).scalars())

        answers, _ = burst()  # the pool fills up to its size
        assert [status for status, _ in answers] == [201] * KIOSKS, answers
        with watcher.connect() as connection:
            kept = backends(connection)
            seen, done = set(), threading.Event()

            def watch():
                while not done.is_set():
                    seen.update(backends(connection))
                    time.sleep(0.002)

            watching = threading.Thread(target=watch)
            watching.start()
            try:
                answers, statuses = burst(reports=3)
            finally:
                done.set()
                watching.join(10)
        assert [status for status, _ in answers] == [201] * KIOSKS, answers
        assert statuses == [200] * 3
        labels = [ticket["ticket"]["number"] for _, ticket in answers]
        assert len(set(labels)) == KIOSKS
        # No connection was opened for the burst: every server process that served it was there
        # before (SQLAlchemy's default pool opened and closed ten in each burst of 32).
        assert seen - kept == set()
        assert len(kept) <= POSTGRES_POOL["pool_size"] + 3  # and the leader locks' own connections
    finally:
        watcher.dispose()
        system.stop()
