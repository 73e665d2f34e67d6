"""What a texting check-in, a call with its texts and a display's snapshot cost in instructions,
counted by callgrind: the same count in every run (within half a percent), whatever else the machine is doing, where
timings on this shared virtual machine vary by a third within the hour. Use it to compare two
versions of the code; the timings are bench/history.py's.

    .venv/bin/python -m bench.instructions [--db sqlite|postgresql://USER@HOST/DB] [--check-ins 40] [--calls 40] [--snapshots 40]

Builds an empty branch (bench/history.py's database()), runs the app in this process (Flask's
test client, no HTTP server, no gateway sending the texts), checks in 30 customers to warm it up,
then counts, under `valgrind --tool=callgrind`, the instructions of N more check-ins (each with a
phone number and consent: its welcome text queued), of N calls of the next customer, each
completed after (over the API, with the admin's token; everyone waiting asked for texts, so each
call texts "go to counter", "you're next" and "nearly your turn") and of N snapshot builds. On
PostgreSQL the count is this process's only (the driver's side of each round trip, not the
server's). Needs valgrind (Debian's package); about a minute.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = "SEED_BENCH_INSTRUCTIONS_CHILD"


def child(db: str, check_ins: int, calls: int, snapshots: int) -> None:
    """Inside valgrind: warm up, then switch counting on around each measured part."""
    from core.extensions import db as database
    from display import snapshot

    from .history import database as scratch_database

    def counting(on: bool) -> None:
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                       check=True, capture_output=True)

    def zero() -> None:
        subprocess.run(["callgrind_control", "-z", str(os.getpid())], check=True, capture_output=True)

    def dump() -> None:
        subprocess.run(["callgrind_control", "-d", str(os.getpid())], check=True, capture_output=True)

    with scratch_database(db, 0) as (_url, _instance, token, layout, app):
        app.config["TESTING"] = False
        client = app.test_client()

        def check_in(n: int) -> None:
            answer = client.post("/api/v1/checkins", json={
                "service": "A", "language": "en", "branch": layout["branch"], "phone": f"+995577{n:06d}",
                "sms_consent": True})
            assert answer.status_code == 201, answer.text

        for n in range(30):
            check_in(n)
        zero()
        counting(True)
        for n in range(30, 30 + check_ins):
            check_in(n)
        counting(False)
        dump()
        staff, counter = {"Authorization": f"Bearer {token}"}, layout["counters"]["5"][0]

        def call_and_complete() -> None:
            called = client.post(f"/api/v1/counters/{counter}/call-next", json={}, headers=staff)
            assert called.status_code == 200 and called.json["ticket"], called.text
            done = client.post(f"/api/v1/tickets/{called.json['ticket']['id']}/complete", json={}, headers=staff)
            assert done.status_code == 200, done.text

        for n in range(30 + check_ins, 30 + check_ins + calls):  # (as many waiting after as before)
            check_in(n)
        call_and_complete()
        zero()
        counting(True)
        for _ in range(calls):
            call_and_complete()
        counting(False)
        dump()
        with app.app_context():
            snapshot.build(layout["branch"])
            database.session.remove()
            zero()
            counting(True)
            for _ in range(snapshots):
                snapshot.build(layout["branch"])
                database.session.remove()
            counting(False)
            dump()
            database.engine.dispose()


def total(path: Path) -> int:
    """The dump's instruction count (its "totals:" line; "summary:" is the count before it was zeroed)."""
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL (bench/history.py)")
    parser.add_argument("--check-ins", type=int, default=40)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--snapshots", type=int, default=40)
    args = parser.parse_args(argv)
    if os.environ.get(CHILD):
        child(args.db, args.check_ins, args.calls, args.snapshots)
        return 0
    with tempfile.TemporaryDirectory(prefix="seed_callgrind_") as folder:
        out = Path(folder) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                   sys.executable, "-m", "bench.instructions", "--db", args.db,
                   "--check-ins", str(args.check_ins), "--calls", str(args.calls), "--snapshots", str(args.snapshots)]
        run = subprocess.run(command, env={**os.environ, CHILD: "1"}, cwd=Path(__file__).resolve().parent.parent,
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-3000:], sep="\n", file=sys.stderr)
            return run.returncode
        # callgrind names the dumps callgrind.out.1, .2, ... in the order they were asked for.
        dumps = sorted((path for path in Path(folder).glob("callgrind.out.*") if path.suffix[1:].isdigit()),
                       key=lambda path: int(path.suffix[1:]))
        if len(dumps) < 3:
            print(f"expected three dumps, found {[path.name for path in dumps]}", file=sys.stderr)
            return 1
        parts = {"check-ins": total(dumps[0]), "calls": total(dumps[1]), "snapshots": total(dumps[2])}
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print(f"\n{label}, instructions (callgrind), this process only")
    print("| step | instructions each |")
    print("|---|---|")
    print(f"| texting check-in | {parts['check-ins'] / args.check_ins / 1e6:.2f} million |")
    print(f"| call next and complete (3 texts and a survey) | {parts['calls'] / args.calls / 1e6:.2f} million |")
    print(f"| display snapshot | {parts['snapshots'] / args.snapshots / 1e6:.2f} million |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
