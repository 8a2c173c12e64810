"""Fleet simulation: N worker processes serving `noop` jobs, direct to Postgres or through PgBouncer in
transaction mode (started here on a free port, Debian's `pgbouncer`), on a fresh database `bench_fleet`.

    .venv/bin/python scripts/bench_fleet.py                          # direct 10; pooled 10, 50, 100, 200
    .venv/bin/python scripts/bench_fleet.py --pooled 50 --direct 10 --jobs 5000    # quicker

Workers are forked from this process after the imports (the real Worker loop, a registry holding only
`noop`, no ML imports), so 200 of them fit on a small machine. Direct workers LISTEN (one session for the
host, worker/listener.py); pooled ones have no direct URL, so they poll (adaptive interval, index-only
probe) and never hold a session.

For each run it reports:
conns    server connections of the bench database (pg_stat_activity), idle and at peak during the drain
idle     transactions/s on the bench database and the CPU of its server backends (percent of one core,
         from /proc) while the N workers sit idle for --idle-s seconds, after they settled
latency  enqueue-to-start of --latency-jobs single jobs enqueued one at a time at random gaps while the
         fleet is idle: started_at - created_at, both the server's clock; p50 and p95
drain    --jobs noop jobs committed at once; jobs/s until all completed, and the server backends' CPU
Ratios compare each pooled run with the direct run of the same N, measured in the same invocation.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from enchant_worker.config import Settings  # noqa: E402
from enchant_worker.db import pgbouncer  # noqa: E402
from enchant_worker.db.connection import Database, connect  # noqa: E402
from enchant_worker.db.migrate import migrate  # noqa: E402
from enchant_worker.domain.jobs import NewJob  # noqa: E402
from enchant_worker.handlers import noop  # noqa: E402
from enchant_worker.queue import JobQueue  # noqa: E402
from enchant_worker.worker.registry import Registry  # noqa: E402
from enchant_worker.worker.runner import Worker  # noqa: E402

DB = "bench_fleet"
TICK = os.sysconf("SC_CLK_TCK")


def child(url: str, pooled: bool) -> None:
    """A worker process (forked): runs until SIGTERM, then leaves without touching the parent's sockets."""
    logging.basicConfig(level=logging.ERROR)
    settings = Settings(database_url=url, home=Path("/tmp/enchant-bench-fleet"))
    worker = Worker(Database(url, pooled=pooled, retry_for_s=60), settings, Registry([noop.HANDLER]))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(now=True))
    try:
        worker.run()
    finally:
        os._exit(0)


def cpu_ticks(pids) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total


class Monitor:
    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)
        self.me = self.conn.info.backend_pid

    def backends(self) -> list[int]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (DB, self.me)
            )
        ]

    def commits(self) -> int:
        return self.conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (DB,)
        ).fetchone()[0]

    def count(self, sql: str) -> int:
        return self.conn.execute(sql).fetchone()[0]


def run(server_url: str, n: int, pooled: bool, args, bouncer) -> dict:
    direct = make_conninfo(server_url, dbname=DB)
    url = bouncer.url(DB) if pooled else direct
    mon = Monitor(direct)
    mon.conn.execute("TRUNCATE processing_jobs, workers")
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            mon.conn.pgconn.socket  # noqa: B018 (the inherited socket is left alone: os._exit at the end)
            child(url, pooled)
        pids.append(pid)
    result = {"mode": "pooled" if pooled else "direct", "n": n}
    try:
        deadline = time.monotonic() + 60 + n
        while mon.count("SELECT count(*) FROM workers WHERE status = 'running'") < n:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not all start")
            time.sleep(0.5)
        time.sleep(args.settle_s)  # idle pollers back off to their ceiling
        # idle
        backends = mon.backends()
        result["conns_idle"] = len(backends)
        c0, t0, b0, w0 = (
            mon.commits(),
            cpu_ticks(backends),
            cpu_ticks([bouncer.proc.pid]) if pooled else 0,
            time.monotonic(),
        )
        time.sleep(args.idle_s)
        dt = time.monotonic() - w0
        result["idle_tps"] = (mon.commits() - c0) / dt
        result["idle_cpu"] = 100 * (cpu_ticks(backends) - t0) / TICK / dt
        result["idle_bouncer_cpu"] = 100 * (cpu_ticks([bouncer.proc.pid]) - b0) / TICK / dt if pooled else 0.0
        # latency
        queue = JobQueue(mon.conn)
        lat = []
        for _ in range(args.latency_jobs):
            time.sleep(random.uniform(0.1, 0.4))
            job = queue.enqueue(NewJob("noop"))
            while True:
                row = mon.conn.execute(
                    "SELECT extract(epoch FROM started_at - created_at) FROM processing_jobs "
                    "WHERE id = %s AND started_at IS NOT NULL",
                    (job,),
                ).fetchone()
                if row:
                    lat.append(float(row[0]) * 1000)
                    break
                time.sleep(0.005)
        lat.sort()
        result["lat_p50"] = statistics.median(lat)
        result["lat_p95"] = lat[max(0, round(0.95 * len(lat)) - 1)]
        # drain
        mon.conn.execute("DELETE FROM processing_jobs")
        with mon.conn.transaction():
            for i in range(0, args.jobs, 1000):
                queue.enqueue_many([NewJob("noop") for _ in range(min(1000, args.jobs - i))])
        start = time.monotonic()
        peak = 0
        ticks = {}
        while True:
            bs = mon.backends()
            peak = max(peak, len(bs))
            for pid in bs:
                ticks.setdefault(pid, cpu_ticks([pid]))
            left = mon.count("SELECT count(*) FROM processing_jobs WHERE status <> 'completed'")
            if left == 0:
                break
            if time.monotonic() - start > 600:
                raise RuntimeError(f"drain did not finish: {left} left")
            time.sleep(0.2)
        dt = time.monotonic() - start
        result["drain_jps"] = args.jobs / dt
        result["drain_cpu"] = 100 * sum(cpu_ticks([p]) - t for p, t in ticks.items()) / TICK / dt
        result["conns_peak"] = peak
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in pids:
            os.waitpid(pid, 0)
        mon.conn.close()
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--server",
        default=os.environ.get("ENCHANT_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    p.add_argument(
        "--direct",
        default="10",
        help="comma-separated fleet sizes to run direct (1 connection each, + 1 LISTEN)",
    )
    p.add_argument("--pooled", default="10,50,100,200", help="comma-separated fleet sizes through PgBouncer")
    p.add_argument(
        "--pool-size", type=int, default=20, help="PgBouncer default_pool_size (server connections)"
    )
    p.add_argument(
        "--connect-query",
        default="SET enable_bitmapscan = off",
        help="PgBouncer connect_query: the worker session setting, made per server connection",
    )
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--latency-jobs", type=int, default=40)
    p.add_argument("--idle-s", type=float, default=10.0)
    p.add_argument("--settle-s", type=float, default=6.0)
    args = p.parse_args()
    if pgbouncer.binary() is None:
        print("pgbouncer is not installed: apt-get install -y pgbouncer", file=sys.stderr)
        return 2
    server = args.server
    admin = make_conninfo(server, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
        max_conn = conn.execute("SHOW max_connections").fetchone()[0]
    with connect(make_conninfo(server, dbname=DB)) as conn:
        migrate(conn, REPO / "migrations")
    print(
        f"server {conninfo_to_dict(server).get('host')}:{conninfo_to_dict(server).get('port')} "
        f"max_connections={max_conn}; {os.cpu_count()} CPUs; PgBouncer pool_size={args.pool_size}; "
        f"{args.jobs} jobs per drain",
        flush=True,
    )
    rows = []
    with pgbouncer.PgBouncer(
        make_conninfo(server, dbname=DB),
        mode="transaction",
        pool_size=args.pool_size,
        max_client_conn=5000,
        connect_query=args.connect_query or None,
    ) as bouncer:
        plan = [(int(n), False) for n in args.direct.split(",") if n] + [
            (int(n), True) for n in args.pooled.split(",") if n
        ]
        for n, pooled in plan:
            r = run(server, n, pooled, args, bouncer)
            rows.append(r)
            print(fmt(r, rows), flush=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    print(
        "\n| mode | N | server conns idle / peak | idle tx/s | idle server CPU | PgBouncer CPU idle | "
        "enqueue-to-start p50 / p95 | drain jobs/s (vs direct) | drain server CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = next((d for d in rows if d["mode"] == "direct" and d["n"] == r["n"]), None)
        ratio = f" ({r['drain_jps'] / ref['drain_jps']:.2f}x)" if ref and r is not ref else ""
        print(
            f"| {r['mode']} | {r['n']} | {r['conns_idle']} / {r['conns_peak']} | {r['idle_tps']:.0f} | "
            f"{r['idle_cpu']:.1f}% | {r['idle_bouncer_cpu']:.1f}% | {r['lat_p50']:.0f} / {r['lat_p95']:.0f} ms | "
            f"{r['drain_jps']:.0f}{ratio} | {r['drain_cpu']:.0f}% |"
        )
    return 0


def fmt(r: dict, rows: list[dict]) -> str:
    return (
        f"{r['mode']:6} N={r['n']:<4} conns idle={r['conns_idle']} peak={r['conns_peak']}  "
        f"idle {r['idle_tps']:.0f} tx/s cpu {r['idle_cpu']:.1f}% (bouncer {r['idle_bouncer_cpu']:.1f}%)  "
        f"latency p50 {r['lat_p50']:.0f} ms p95 {r['lat_p95']:.0f} ms  "
        f"drain {r['drain_jps']:.0f} jobs/s cpu {r['drain_cpu']:.0f}%"
    )


if __name__ == "__main__":
    sys.exit(main())
