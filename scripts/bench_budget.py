"""Connection budget on one host: N worker processes direct to Postgres (so they LISTEN), on a fresh
database `bench_budget`; counts the server connections they hold, idle and after a burst of `noop` jobs,
split into LISTEN sessions and the rest (pg_stat_activity).

    .venv/bin/python scripts/bench_budget.py --workers 1,20,50 --concurrency 2

Workers are forked from this process after the imports (the real Worker loop, only `noop`). With the
per-host listener, the workers of a host share one LISTEN session (worker/listener.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from enchant_worker.config import Settings  # noqa: E402
from enchant_worker.db.connection import Database, connect  # noqa: E402
from enchant_worker.db.migrate import migrate  # noqa: E402
from enchant_worker.domain.jobs import NewJob  # noqa: E402
from enchant_worker.handlers import noop  # noqa: E402
from enchant_worker.queue import JobQueue  # noqa: E402
from enchant_worker.worker.registry import Registry  # noqa: E402
from enchant_worker.worker.runner import Worker  # noqa: E402

DB = "bench_budget"


def child(url: str, concurrency: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    settings = Settings(database_url=url, home=Path("/tmp/enchant-bench-budget"))
    worker = Worker(
        Database(url, retry_for_s=60), settings, Registry([noop.HANDLER]), concurrency=concurrency
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(now=True))
    try:
        worker.run()
    finally:
        os._exit(0)


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(all, LISTEN) backends of the bench database but ours."""
    row = conn.execute(
        "SELECT count(*) AS n, count(*) FILTER (WHERE query ILIKE '%%LISTEN enchant_jobs%%') AS listen "
        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (DB,),
    ).fetchone()
    return row["n"], row["listen"]


def _scalar(conn, sql: str) -> int:
    return next(iter(conn.execute(sql).fetchone().values()))


def measure(url: str, n: int, concurrency: int, jobs: int) -> dict:
    conn = connect(url)
    conn.execute("TRUNCATE processing_jobs, workers")
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            child(url, concurrency)
        pids.append(pid)
    try:
        deadline = time.monotonic() + 60 + n
        while _scalar(conn, "SELECT count(*) FROM workers WHERE status = 'running'") < n:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not all start")
            time.sleep(0.2)
        time.sleep(2)
        idle = counts(conn)
        queue = JobQueue(conn)
        queue.enqueue_many([NewJob("noop") for _ in range(jobs)])
        while _scalar(conn, "SELECT count(*) FROM processing_jobs WHERE status <> 'completed'"):
            time.sleep(0.1)
        time.sleep(1)
        busy = counts(conn)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            os.waitpid(pid, 0)
        conn.close()
    return {"n": n, "idle": idle, "after_jobs": busy}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--workers", default="1,20,50", help="comma-separated numbers of workers on this host")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--jobs", type=int, default=500, help="noop jobs drained between the two counts")
    args = p.parse_args()
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    url = make_conninfo(args.server, dbname=DB)
    with connect(url) as conn:
        migrate(conn, REPO / "migrations")
    print(
        f"{'workers':>7} {'conc':>4} {'idle all':>8} {'idle LISTEN':>11} {'after all':>9} {'after LISTEN':>12}"
    )
    try:
        for n in [int(x) for x in args.workers.split(",")]:
            r = measure(url, n, args.concurrency, args.jobs)
            (ia, il), (ba, bl) = r["idle"], r["after_jobs"]
            print(f"{n:>7} {args.concurrency:>4} {ia:>8} {il:>11} {ba:>9} {bl:>12}", flush=True)
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
