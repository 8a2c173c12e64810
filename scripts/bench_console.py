"""Console benchmark: the dashboard's overview and job-list queries with 1,000,000 rows in processing_jobs.

    .venv/bin/python scripts/bench_console.py                  # 1,000,000 jobs, a few minutes to fill
    .venv/bin/python scripts/bench_console.py --jobs 100000    # quicker

Fills a fresh database `bench_console` (dropped afterwards unless --keep) with a month of history: 96 %
completed, 2 % failed, 1 % cancelled, 0.8 % pending, 0.2 % processing, over six job types and 1,000 users,
a third about scenes of 100 stories; VACUUM ANALYZE (as autovacuum would). Then runs each query the console runs (the overview on
every page load and every server-sent update; the job list with each filter, its second page, the
search by id prefix, the selection of a bulk action) --runs times on one connection (so psycopg's
prepared statements and Postgres' plan cache play as in the API) and prints the median and p95 in ms,
the target (50 ms) and whether EXPLAIN shows the indexes used (no sequential scan of processing_jobs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg import sql as psql
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from enchant_worker.api import pagination  # noqa: E402
from enchant_worker.db.connection import connect  # noqa: E402
from enchant_worker.db.migrate import migrate  # noqa: E402
from enchant_worker.sql import q  # noqa: E402

TARGET_MS = 50.0

FILL = """
-- a month of jobs: statuses by share, six types, 1,000 users, every third about a scene
INSERT INTO processing_jobs (job_type, status, priority, attempts, user_id, entity_type, entity_id, metadata,
                             created_at, started_at, completed_at, error_message, progress_percent)
SELECT (ARRAY['generate_image','generate_image','generate_image','export_story','train_lora','noop'])[1 + g %% 6],
       s.status, 5, 1,
       u.ids[1 + g %% 1000],
       CASE WHEN g %% 3 = 0 THEN 'scene' END,
       CASE WHEN g %% 3 = 0 THEN sc.ids[1 + g %% 1000] END,
       '{}'::JSONB, c.created, c.created + INTERVAL '2 seconds',
       CASE WHEN s.status IN ('completed', 'failed', 'cancelled') THEN c.created + INTERVAL '5 seconds' END,
       CASE WHEN s.status = 'failed' THEN 'RuntimeError: bench' END,
       CASE WHEN s.status = 'completed' THEN 100 ELSE 0 END
FROM generate_series(1, %(n)s) g
CROSS JOIN (SELECT array_agg(id ORDER BY n) AS ids FROM bench_users) u
CROSS JOIN (SELECT array_agg(id ORDER BY n) AS ids FROM bench_scenes) sc
CROSS JOIN LATERAL (SELECT NOW() - make_interval(secs => (%(n)s - g) * 2592000.0 / %(n)s) AS created) c
CROSS JOIN LATERAL (SELECT CASE
    WHEN g > %(n)s - %(n)s / 100 THEN (CASE WHEN g %% 5 = 0 THEN 'processing' ELSE 'pending' END)
    WHEN g %% 50 = 0 THEN 'failed' WHEN g %% 100 = 1 THEN 'cancelled' ELSE 'completed' END AS status) s
"""

SETUP = """
CREATE TEMP TABLE bench_users AS
SELECT n, gen_random_uuid() AS id FROM generate_series(0, 999) n;
INSERT INTO users (id, email) SELECT id, 'bench' || n || '@example.org' FROM bench_users;
INSERT INTO stories (id, user_id, title) SELECT gen_random_uuid(), id, 'story ' || n FROM bench_users WHERE n < 100;
INSERT INTO chapters (story_id, chapter_number, title) SELECT id, 1, 'one' FROM stories;
CREATE TEMP TABLE bench_scenes AS
SELECT row_number() OVER () - 1 AS n, s.id FROM (
    SELECT gen_random_uuid() AS id, c.id AS chapter_id FROM chapters c, generate_series(1, 10)) s;
INSERT INTO scenes (id, chapter_id, content)
SELECT b.id, (SELECT id FROM chapters ORDER BY id OFFSET (b.n % 100) LIMIT 1), 'x' FROM bench_scenes b;
"""


def job_list(**filters):
    base = {
        "viewer": None,
        "limit": 51,
        "status": None,
        "job_type": None,
        "user_id": None,
        "entity_type": None,
        "entity_id": None,
        "story_id": None,
        "created_from": None,
        "created_to": None,
        "after_created": None,
        "after_id": None,
    }
    return "api_job_list", {**base, **filters}


def queries(conn) -> list[tuple[str, str, dict]]:
    user = conn.execute("SELECT id FROM users WHERE email = 'bench7@example.org'").fetchone()["id"]
    story = conn.execute("SELECT id FROM stories ORDER BY title LIMIT 1").fetchone()["id"]
    some = conn.execute(
        "SELECT id FROM processing_jobs ORDER BY created_at DESC OFFSET 500 LIMIT 1"
    ).fetchone()["id"]
    page1 = conn.execute(q("api_job_list"), job_list(status="failed")[1]).fetchall()
    now = datetime.now(UTC)
    prefix = str(some).replace("-", "")[:6]
    return [
        ("overview: counts by type and state", "api_console_counts", {}),
        ("overview: oldest pending per type", "api_queue_oldest_pending", {}),
        ("overview: run times p50/p95 (30 min)", "api_queue_run_times", {"minutes": 30}),
        (
            "overview: throughput 30 min / 1 min bars",
            "api_queue_throughput_binned",
            {"minutes": 30, "bucket_s": 60},
        ),
        (
            "overview: throughput 24 h / 30 min bars",
            "api_queue_throughput_binned",
            {"minutes": 1440, "bucket_s": 1800},
        ),
        ("overview: recent failures", "api_console_failures", {"limit": 10}),
        ("overview: workers", "api_workers", {"include_stopped": False}),
        ("list: newest 50", *job_list()),
        ("list: status=failed", *job_list(status="failed")),
        (
            "list: status=failed, page 2",
            *job_list(status="failed", after_created=page1[49]["created_at"], after_id=page1[49]["id"]),
        ),
        ("list: type=train_lora", *job_list(job_type="train_lora")),
        ("list: user", *job_list(user_id=user)),
        ("list: story", *job_list(story_id=story)),
        (
            "list: created in one hour a week ago",
            *job_list(created_from=now - timedelta(days=7, hours=1), created_to=now - timedelta(days=7)),
        ),
        ("list: status=pending, type=noop", *job_list(status="pending", job_type="noop")),
        (
            "search: id prefix",
            "api_job_id_range",
            {"low": uuid.UUID(prefix.ljust(32, "0")), "high": uuid.UUID(prefix.ljust(32, "f")), "limit": 20},
        ),
        (
            "bulk: select failed generate_image",
            "api_job_ids_matching",
            {
                "limit": 1000,
                "status": "failed",
                "job_type": "generate_image",
                "user_id": None,
                "story_id": None,
                "created_from": None,
                "created_to": None,
            },
        ),
    ]


def explain(conn, name: str, params: dict) -> tuple[bool, str]:
    plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(psql.SQL("EXPLAIN ") + psql.SQL(q(name)), params))
    seq = [line.strip() for line in plan.splitlines() if "Seq Scan on processing_jobs" in line]
    return not seq, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database bench_console")
    parser.add_argument("--plans", action="store_true", help="print every EXPLAIN")
    args = parser.parse_args()
    admin_url = os.environ.get("ENCHANT_DATABASE_URL")
    if not admin_url:
        print(
            "set ENCHANT_DATABASE_URL to a Postgres server (a database bench_console is created there)",
            file=sys.stderr,
        )
        return 2
    admin = connect(admin_url)
    admin.execute("DROP DATABASE IF EXISTS bench_console WITH (FORCE)")
    admin.execute("CREATE DATABASE bench_console")
    url = make_conninfo(admin_url, dbname="bench_console")
    try:
        conn = connect(url)
        migrate(conn, REPO / "migrations")
        started = time.perf_counter()
        with conn.transaction():
            for statement in SETUP.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(FILL, {"n": args.jobs})
        conn.execute("VACUUM ANALYZE")  # what autovacuum does to a table that big: statistics, visibility map
        fill_s = time.perf_counter() - started
        n = conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"]
        print(
            f"{n:,} jobs in processing_jobs (filled and analysed in {fill_s:.0f} s); {args.runs} runs each\n"
        )
        print(f"| query | median ms | p95 ms | rows | under {TARGET_MS:.0f} ms | indexes, no seq scan |")
        print("|---|---:|---:|---:|---|---|")
        worst = 0.0
        ok_all = True
        for label, name, params in queries(conn):
            times, rows = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                rows = len(conn.execute(q(name), params).fetchall())
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
            indexed, plan = explain(conn, name, params)
            ok_all &= indexed and median < TARGET_MS
            worst = max(worst, median)
            print(
                f"| {label} | {median:.2f} | {p95:.2f} | {rows} | {'yes' if median < TARGET_MS else 'NO'} | "
                f"{'yes' if indexed else 'NO'} |"
            )
            if args.plans or not indexed:
                print("\n".join("    " + line for line in plan.splitlines()))
        _ = pagination  # the list pages with the API's keyset cursor: page 2 above is what a cursor asks for
        print(
            f"\nslowest median {worst:.2f} ms; {'all' if ok_all else 'NOT all'} under {TARGET_MS:.0f} ms with indexes"
        )
        conn.close()
        return 0 if ok_all else 1
    finally:
        if not args.keep:
            admin.execute("DROP DATABASE IF EXISTS bench_console WITH (FORCE)")


if __name__ == "__main__":
    raise SystemExit(main())
