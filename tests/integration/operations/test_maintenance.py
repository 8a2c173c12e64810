"""The maintenance tasks against a real database: partitions, the statistics view, retention, metrics,
reaping, recurring jobs, and `enchant-worker maintenance`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from enchant_worker.scheduling import tasks
from enchant_worker.scheduling.schedule import RecurringJob, parse_every
from tests.support.stories import make_user, story_with_scene

from .conftest import cli


def _month(offset: int) -> datetime:
    now = datetime.now(UTC)
    year, month = divmod(now.year * 12 + now.month - 1 + offset, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _partition_name(moment: datetime) -> str:
    return f"images_y{moment:%Y}m{moment:%m}"


def _partitions(conn) -> set[str]:
    return {
        r["name"]
        for r in conn.execute(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'images'::regclass"
        )
    }


def _story(conn, title="A story") -> dict:
    user = make_user(conn)
    return {"user": user, **story_with_scene(conn, user, title)}


def _image(conn, scene, *, at: datetime | None = None, timings: dict | None = None, rating=None):
    return conn.execute(
        "INSERT INTO images (scene_id, file_path, timings, user_rating, created_at) VALUES (%s, 'x.png', %s, %s, %s) "
        "RETURNING tableoid::regclass::text AS partition",
        (scene, json.dumps(timings or {}), rating, at or datetime.now(UTC)),
    ).fetchone()["partition"]


def test_partitions_are_created_ahead_and_next_month_lands_in_its_own(db, settings, conn):
    result = tasks.run_now("create_partitions", db, settings)
    expected = [_partition_name(_month(i)) for i in range(settings.partitions_ahead + 1)]
    assert result["partitions"] == expected
    assert set(expected) <= _partitions(conn)
    st = _story(conn)
    assert _image(conn, st["scene"], at=_month(1) + timedelta(days=3, hours=5)) == _partition_name(_month(1))
    assert _image(conn, st["scene"], at=_month(3)) == _partition_name(_month(3))
    # Idempotent: a second run changes nothing.
    assert tasks.run_now("create_partitions", db, settings)["partitions"] == expected


def test_rows_caught_by_the_default_partition_move_into_the_new_one(db, settings, conn):
    st = _story(conn)
    far = _month(6) + timedelta(days=10)
    assert _image(conn, st["scene"], at=far) == "images_default"
    tasks.run_now("create_partitions", db, settings.model_copy(update={"partitions_ahead": 6}))
    rows = conn.execute(
        "SELECT tableoid::regclass::text AS p FROM images WHERE created_at = %s", (far,)
    ).fetchall()
    assert [r["p"] for r in rows] == [_partition_name(far)]
    assert conn.execute("SELECT count(*) AS n FROM images_default").fetchone()["n"] == 0


def test_statistics_refresh_concurrently_while_readers_read(db, settings, conn):
    st = _story(conn, "Refreshed")
    for rating in (4, 5):
        _image(conn, st["scene"], rating=rating)
    # A reader holds the view open in a transaction: a plain REFRESH would wait for it; CONCURRENTLY not.
    reader = db.open(autocommit=False)
    reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    before = reader.execute(
        "SELECT image_count FROM story_statistics WHERE id = %s", (st["story"],)
    ).fetchone()
    assert before is None  # the view was filled when the schema was made, before this story existed
    errors: list[Exception] = []
    reads = [0]
    stop = threading.Event()

    def keep_reading():
        with db.connection() as c:
            while not stop.is_set():
                try:
                    c.execute("SELECT count(*), sum(image_count) FROM story_statistics").fetchone()
                    reads[0] += 1
                except psycopg.Error as exc:
                    errors.append(exc)

    readers = [threading.Thread(target=keep_reading) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        started = time.monotonic()
        done = threading.Thread(target=tasks.run_now, args=("refresh_statistics", db, settings))
        done.start()
        done.join(15)
        assert not done.is_alive(), "the refresh waited for the reader"
        took = time.monotonic() - started
        # The open reader still sees its snapshot; new readers see the refreshed view.
        assert (
            reader.execute(
                "SELECT image_count FROM story_statistics WHERE id = %s", (st["story"],)
            ).fetchone()
            is None
        )
    finally:
        stop.set()
        for t in readers:
            t.join()
        reader.rollback()
        reader.close()
    assert not errors and reads[0] > 0
    row = conn.execute(
        "SELECT image_count, avg_rating FROM story_statistics WHERE id = %s", (st["story"],)
    ).fetchone()
    assert row["image_count"] == 2 and float(row["avg_rating"]) == 4.5
    assert took < 15
    last = tasks.last_runs(db)["refresh_statistics"]
    assert last["status"] == "completed" and last["result"] == {"concurrently": True}


def _job(conn, status: str, completed_ago_days: float | None, job_type="noop") -> uuid.UUID:
    completed = None if completed_ago_days is None else datetime.now(UTC) - timedelta(days=completed_ago_days)
    return conn.execute(
        "INSERT INTO processing_jobs (job_type, status, completed_at, result) VALUES (%s, %s, %s, '{\"ok\": 1}') RETURNING id",
        (job_type, status, completed),
    ).fetchone()["id"]


def test_finished_jobs_past_retention_move_to_history(db, settings, conn):
    old = [_job(conn, s, 40) for s in ("completed", "failed", "cancelled")]
    recent = _job(conn, "completed", 1)
    pending = _job(conn, "pending", None)
    result = tasks.run_now("archive_jobs", db, settings.model_copy(update={"archive_batch_size": 2}))
    assert result["archived"] == 3
    active = {r["id"] for r in conn.execute("SELECT id FROM processing_jobs")}
    assert active == {recent, pending}
    history = conn.execute("SELECT id, status, result, archived_at FROM processing_jobs_history").fetchall()
    assert {r["id"] for r in history} == set(old)
    assert all(r["result"] == {"ok": 1} and r["archived_at"] for r in history)
    assert tasks.run_now("archive_jobs", db, settings)["archived"] == 0


def test_story_metrics_per_story_per_day(db, settings, conn):
    st, other = _story(conn, "Measured"), _story(conn, "Quiet")
    _image(conn, st["scene"], timings={"gpu_s": 2.0})
    _image(conn, st["scene"], timings={"denoise_s": 3.0, "decode_s": 1.0, "model_load_s": 50})
    _image(conn, st["scene"], at=datetime.now(UTC) - timedelta(days=1), timings={"gpu_s": 5})
    conn.execute(
        "INSERT INTO processing_jobs (job_type, status, entity_type, entity_id, completed_at) "
        "VALUES ('generate_image', 'failed', 'scene', %s, NOW())",
        (st["scene"],),
    )
    conn.execute(
        "INSERT INTO processing_jobs (job_type, status, metadata, completed_at) "
        "VALUES ('generate_image', 'failed', %s, NOW())",
        (json.dumps({"scene_id": str(st["scene"])}),),
    )
    for _ in range(2):  # recorded twice: upserted, not duplicated
        tasks.run_now("record_metrics", db, settings)
    rows = conn.execute(
        "SELECT story_id, metric_type, metric_value, metadata, recorded_at FROM story_metrics "
        "ORDER BY recorded_at, metric_type"
    ).fetchall()
    assert {r["story_id"] for r in rows} == {st["story"]}
    today = datetime.now(UTC).date().isoformat()
    todays = {r["metric_type"]: float(r["metric_value"]) for r in rows if r["metadata"]["day"] == today}
    assert todays == {"images_generated": 2, "gpu_seconds": 6.0, "mean_seconds_per_image": 3.0, "failures": 2}
    yesterdays = {r["metric_type"]: float(r["metric_value"]) for r in rows if r["metadata"]["day"] != today}
    assert yesterdays == {
        "images_generated": 1,
        "gpu_seconds": 5.0,
        "mean_seconds_per_image": 5.0,
        "failures": 0,
    }
    assert len(rows) == 8 and other["story"] not in {r["story_id"] for r in rows}


def test_expired_leases_are_reaped(db, settings, conn):
    # A dead worker was running one job (its attempt is spent: the last one) and only held the other.
    ran, held = (
        conn.execute(
            "INSERT INTO processing_jobs (job_type, status, attempts, max_attempts, leased_by, lease_token, "
            "lease_expires_at, run_started) VALUES ('noop', 'processing', 1, 1, 'gone', gen_random_uuid(), "
            "NOW() - INTERVAL '1 minute', %s) RETURNING id",
            (started,),
        ).fetchone()["id"]
        for started in (True, False)
    )
    assert tasks.run_now("reap_leases", db, settings) == {"reaped": 2, "failed": 1, "unstarted": 1}
    rows = {
        r["id"]: r for r in conn.execute("SELECT id, status, attempts, error_message FROM processing_jobs")
    }
    assert rows[ran]["status"] == "failed"
    assert (
        rows[ran]["error_message"]
        == "lease expired: worker gone stopped heartbeating while running it (attempt 1 of 1)"
    )
    assert (
        rows[held]["status"] == "pending"
        and rows[held]["attempts"] == 0
        and rows[held]["error_message"] is None
    )


def test_a_tick_is_claimed_once_and_a_recurring_job_enqueued_once(db, conn):
    tick = datetime(2026, 1, 1, 3, tzinfo=UTC)
    calls = []
    assert tasks.run_claimed(db, "t", tick, lambda: calls.append(1) or {"n": 1}, ran_by="a") == {"n": 1}
    assert tasks.run_claimed(db, "t", tick, lambda: calls.append(1) or {"n": 1}, ran_by="b") is None
    assert calls == [1]
    with pytest.raises(RuntimeError):
        tasks.run_claimed(
            db,
            "t",
            tick + timedelta(hours=1),
            lambda: (_ for _ in ()).throw(RuntimeError("boom")),
            ran_by="a",
        )
    failed = conn.execute(
        "SELECT status, error_message FROM maintenance_runs WHERE tick = %s", (tick + timedelta(hours=1),)
    ).fetchone()
    assert failed == {"status": "failed", "error_message": "RuntimeError: boom"}
    job = RecurringJob("digest", parse_every("1h"), "noop", {"seconds": 0}, priority=8)
    first = tasks.enqueue_recurring(db, job, tick)
    assert tasks.enqueue_recurring(db, job, tick) == first
    rows = conn.execute("SELECT priority, metadata FROM processing_jobs WHERE job_type = 'noop'").fetchall()
    assert rows == [{"priority": 8, "metadata": {"seconds": 0}}]


def test_maintenance_cli(cli_env):
    listed = cli("maintenance", "list", "--json", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [t["task"] for t in data["tasks"]][: len(tasks.TASKS)] == list(tasks.TASKS) and data[
        "leader"
    ] is None
    ran = cli("maintenance", "run", "reap_leases", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "task": "reap_leases",
        "result": {"reaped": 0, "failed": 0, "unstarted": 0},
    }
    unknown = cli("maintenance", "run", "defragment", env=cli_env)
    assert unknown.returncode == 2 and "unknown maintenance task 'defragment'" in unknown.stderr
    listed = cli("maintenance", "list", env=cli_env)
    assert "reap_leases" in listed.stdout and "last completed" in listed.stdout
