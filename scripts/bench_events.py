"""Analytics events benchmark: ingest through the API, roll-up and expiry, each against a reference
measured in the same run (absolute times on a shared machine are noise; the ratios are the figures).

    ENCHANT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python scripts/bench_events.py
    ... scripts/bench_events.py --quick      # a smoke check

A fresh database `bench_events_<pid>` on that server is created, migrated, and dropped at the end.

ingest   events/s through POST /v1/events (in-process ASGI client, a user key, each event naming a
         story the user owns, rights checked per request) in batches of 500, against the same number
         of events sent one per request, and against the bare multi-row INSERT the route ends with.
rollup   seconds to roll --events events (2 days, --stories stories, views/reading/ratings mixed) up into
         story_metrics, against one sequential scan of the same rows (SELECT sum(length(event_data::text)));
         a second roll-up of the same days must give identical rows (idempotent).
expire   seconds to delete them all in batches, against the time their INSERT took.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from enchant_worker.analytics.rollup import expire_events, rollup_events  # noqa: E402
from enchant_worker.db.connection import connect  # noqa: E402
from enchant_worker.db.migrate import migrate  # noqa: E402
from enchant_worker.sql import q  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events rolled up and expired")
    parser.add_argument("--stories", type=int, default=200)
    parser.add_argument("--ingest", type=int, default=5000, help="events sent through the API per mode")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    args = parser.parse_args()
    if args.quick:
        args.events, args.stories, args.ingest = 20_000, 20, 1000
    server = os.environ.get("ENCHANT_DATABASE_URL")
    if not server:
        print("set ENCHANT_DATABASE_URL to a Postgres server (a database is created on it)", file=sys.stderr)
        return 2
    name = f"bench_events_{os.getpid()}"
    admin = make_conninfo(**{**conninfo_to_dict(server), "dbname": "postgres"})
    url = make_conninfo(**{**conninfo_to_dict(server), "dbname": name})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with connect(url) as conn:
            migrate(conn, REPO / "migrations")
            bench_ingest(conn, url, args.ingest)
            bench_rollup_and_expiry(conn, args.events, args.stories)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def bench_ingest(conn, url: str, total: int) -> None:
    from fastapi.testclient import TestClient

    from enchant_worker.api import create_app
    from enchant_worker.api.auth import create_key
    from enchant_worker.api.store import Store
    from enchant_worker.config import Settings

    user = Store(conn).ensure_user("bench@example.org")
    conn.execute("UPDATE users SET quota_overrides = '{\"events_per_minute\": 0}' WHERE id = %s", (user,))
    key, _ = create_key(Store(conn), name="bench", role="user", user_id=user)
    story = str(
        conn.execute(
            "INSERT INTO stories (user_id, title) VALUES (%s, 'B') RETURNING id", (user,)
        ).fetchone()["id"]
    )
    event = {"event_type": "story_view", "event_data": {"story_id": story}, "session_id": "bench"}
    headers = {"Authorization": f"Bearer {key}"}
    app = create_app(Settings(database_url=url), database_url=url)
    with TestClient(app, client=("203.0.113.9", 40000)) as client:
        client.post("/v1/events", json={"events": [event]}, headers=headers)  # warm the pool and the caches
        started = time.perf_counter()
        for _ in range(total // 500):
            assert (
                client.post("/v1/events", json={"events": [event] * 500}, headers=headers).status_code == 202
            )
        batched_s = time.perf_counter() - started
        singles = total // 5  # one per request is slow: time a fifth as many
        started = time.perf_counter()
        for _ in range(singles):
            assert client.post("/v1/events", json={"events": [event]}, headers=headers).status_code == 202
        single_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(total // 500):
        conn.execute(
            q("insert_events"),
            {
                "user_id": user,
                "ip_address": "203.0.113.9",
                "user_agent": "bench",
                "event_type": ["story_view"] * 500,
                "event_data": [json.dumps(event["event_data"])] * 500,
                "session_id": ["bench"] * 500,
            },
        )
    insert_s = time.perf_counter() - started
    batched, single, bare = total / batched_s, singles / single_s, total / insert_s
    print(
        f"ingest: batches of 500 {batched:,.0f} events/s; one per request {single:,.0f} events/s "
        f"(batches x{batched / single:.1f}); bare multi-row INSERT {bare:,.0f} events/s "
        f"(the API reaches {batched / bare:.2f} of it)"
    )
    conn.execute("DELETE FROM user_analytics_events")


def bench_rollup_and_expiry(conn, total: int, stories: int) -> None:
    rng = random.Random(7)
    users = [
        conn.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", (f"u{i}@b",)).fetchone()["id"]
        for i in range(50)
    ]
    story_ids, image_ids = [], []
    for _ in range(stories):
        story = conn.execute(
            "INSERT INTO stories (user_id, title) VALUES (%s, 'S') RETURNING id", (users[0],)
        ).fetchone()["id"]
        chapter = conn.execute(
            "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 1) RETURNING id", (story,)
        ).fetchone()["id"]
        scene = conn.execute(
            "INSERT INTO scenes (chapter_id) VALUES (%s) RETURNING id", (chapter,)
        ).fetchone()["id"]
        image = conn.execute(
            "INSERT INTO images (scene_id, file_path) VALUES (%s, 'x.png') RETURNING id", (scene,)
        ).fetchone()["id"]
        story_ids.append(str(story))
        image_ids.append(str(image))
    today = datetime.now(UTC).date()
    noon = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    rows = []
    for _ in range(total):
        kind = rng.random()
        i = rng.randrange(stories)
        if kind < 0.6:
            data = ("story_view", {"story_id": story_ids[i]})
        elif kind < 0.9:
            data = ("reading_progress", {"story_id": story_ids[i], "seconds": rng.randint(5, 300)})
        else:
            data = ("image_rating", {"image_id": image_ids[i], "rating": rng.randint(1, 5)})
        at = noon - timedelta(days=rng.randint(0, 1), seconds=rng.randint(0, 40000))
        rows.append((rng.choice(users), data[0], json.dumps(data[1]), at))
    started = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY user_analytics_events (user_id, event_type, event_data, created_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    insert_s = time.perf_counter() - started
    conn.execute("VACUUM ANALYZE user_analytics_events")
    started = time.perf_counter()
    conn.execute("SELECT sum(length(event_data::text)) FROM user_analytics_events").fetchone()
    scan_s = time.perf_counter() - started
    first, last = today - timedelta(days=1), today
    started = time.perf_counter()
    result = rollup_events(conn, first, last)
    rollup_s = time.perf_counter() - started
    snapshot = conn.execute(
        "SELECT story_id, metric_type, recorded_at, metric_value FROM story_metrics ORDER BY 1, 2, 3"
    ).fetchall()
    started = time.perf_counter()
    rollup_events(conn, first, last)
    again_s = time.perf_counter() - started
    same = (
        snapshot
        == conn.execute(
            "SELECT story_id, metric_type, recorded_at, metric_value FROM story_metrics ORDER BY 1, 2, 3"
        ).fetchall()
    )
    print(
        f"rollup: {total:,} events of {stories} stories over 2 days -> {result['metric_rows']} metric rows, "
        f"{result['images_rated']} image ratings in {rollup_s:.2f} s = {rollup_s / scan_s:.1f}x one scan of the "
        f"events ({total / rollup_s:,.0f} events/s); again {again_s:.2f} s, identical rows: {same}"
    )
    started = time.perf_counter()
    deleted = expire_events(conn, datetime.now(UTC) + timedelta(days=2))
    expire_s = time.perf_counter() - started
    print(
        f"expire: {deleted:,} events deleted in {expire_s:.2f} s = {expire_s / insert_s:.2f}x their COPY "
        f"({deleted / expire_s:,.0f} events/s)"
    )


if __name__ == "__main__":
    sys.exit(main())
