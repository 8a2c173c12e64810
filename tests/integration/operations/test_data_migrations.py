"""Data migrations: resumable batches, a worker killed mid-way, a migration that raises, the CLI."""

from __future__ import annotations

import signal
import threading

import pytest

from enchant_worker.data_migrations import DataMigrationRegistry, default_data_migrations, run_data_migration
from enchant_worker.errors import JobCancelled
from enchant_worker.scheduling.tasks import TaskContext, reap_leases
from tests.support.stories import make_user, story_with_scene
from tests.support.waiting import wait_for

from . import sample_migrations
from .conftest import cli, spawn, stop

ROWS = 10_000


def _state(conn, name="double_values"):
    return conn.execute("SELECT * FROM data_migrations WHERE migration_name = %s", (name,)).fetchone()


def _migrated_counts(conn) -> dict[int, int]:
    rows = conn.execute("SELECT times_migrated, count(*) AS n FROM dm_items GROUP BY 1").fetchall()
    return {r["times_migrated"]: r["n"] for r in rows}


def test_worker_killed_mid_way_resumes_to_100_percent_with_every_row_migrated_once(
    tmp_path, ops_env, db, settings, conn
):
    sample_migrations.setup(conn, ROWS)
    env = {**ops_env, "DM_BATCH_SLEEP_S": "0.1", "ENCHANT_DATA_MIGRATION_BATCH_SIZE": "500"}
    queued = cli("data-migrations", "run", "double_values", env=env)
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.split()[0]

    worker = spawn("worker", "--types", "data_migration", env=env, log=tmp_path / "w1.log")
    try:
        wait_for(lambda: (_state(conn)["progress_percent"] or 0) >= 30, 60, "the migration to pass 30%")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        stop(worker)
    stopped = _state(conn)
    assert stopped["status"] == "running" and 30 <= stopped["progress_percent"] < 100
    assert 0 < stopped["rows_done"] < ROWS
    # Exactly the committed batches are migrated, each row once; the checkpoint is right after them.
    assert _migrated_counts(conn) == {1: stopped["rows_done"], 0: ROWS - stopped["rows_done"]}
    assert stopped["checkpoint"] == {"after_id": stopped["rows_done"]}

    # The lease expires; the reaper puts the job back; another worker resumes it.
    wait_for(
        lambda: reap_leases(TaskContext(db, settings, None))["reaped"],
        15,
        "the lease to expire and be reaped",
    )
    worker = spawn("worker", "--types", "data_migration", env=env, log=tmp_path / "w2.log")
    try:
        wait_for(
            lambda: (
                conn.execute("SELECT status FROM processing_jobs WHERE id = %s", (job_id,)).fetchone()[
                    "status"
                ]
                == "completed"
            ),
            60,
            "the job to complete",
        )
    finally:
        assert stop(worker) == 0, (tmp_path / "w2.log").read_text()[-3000:]
    done = _state(conn)
    assert done["status"] == "completed" and done["progress_percent"] == 100 and done["rows_done"] == ROWS
    assert done["started_at"] < stopped["updated_at"] < done["completed_at"]
    assert _migrated_counts(conn) == {1: ROWS}
    assert conn.execute("SELECT count(*) AS n FROM dm_items WHERE doubled <> value * 2").fetchone()["n"] == 0
    status = cli("data-migrations", "status", env=env)
    assert "double_values" in status.stdout and "completed" in status.stdout and "100%" in status.stdout


def test_a_migration_that_raises_fails_keeps_its_batches_and_a_rerun_continues(conn):
    sample_migrations.setup(conn, 2000)
    conn.execute("UPDATE dm_control SET fail_at = 1234")
    progress: list[float] = []
    with pytest.raises(RuntimeError, match="item 1234 cannot be migrated"):
        run_data_migration(conn, sample_migrations.DOUBLE_VALUES, batch_size=250, progress=progress.append)
    failed = _state(conn)
    assert (
        failed["status"] == "failed"
        and failed["error_message"] == "RuntimeError: item 1234 cannot be migrated"
    )
    assert failed["rows_done"] == 1000 and failed["progress_percent"] == 50 and progress[-1] == 50
    assert _migrated_counts(conn) == {1: 1000, 0: 1000}  # the failing batch rolled back, the others stayed

    conn.execute("UPDATE dm_control SET fail_at = NULL")
    result = run_data_migration(conn, sample_migrations.DOUBLE_VALUES, batch_size=250)
    assert result == {"migration": "double_values", "status": "completed", "rows": 2000}
    done = _state(conn)
    assert done["status"] == "completed" and done["error_message"] is None and done["completed_at"]
    assert _migrated_counts(conn) == {1: 2000}
    # Running a completed migration again does nothing.
    assert run_data_migration(conn, sample_migrations.DOUBLE_VALUES, batch_size=250)["already_completed"]
    assert _migrated_counts(conn) == {1: 2000}


def test_concurrent_runners_take_turns_and_cancel_pauses(db, conn):
    sample_migrations.setup(conn, 3000)
    errors = []

    def run():
        with db.connection() as c:
            try:
                run_data_migration(c, sample_migrations.DOUBLE_VALUES, batch_size=100)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and _migrated_counts(conn) == {1: 3000}

    conn.execute("DELETE FROM data_migrations")
    conn.execute("UPDATE dm_items SET times_migrated = 0")
    calls = iter(range(100))
    with pytest.raises(JobCancelled):
        run_data_migration(
            conn, sample_migrations.DOUBLE_VALUES, batch_size=100, cancelled=lambda: next(calls) >= 3
        )
    paused = _state(conn)
    assert paused["status"] == "pending" and paused["rows_done"] == 300


def test_registry_and_cli_refuse_unknown_names(ops_env):
    registry = default_data_migrations("tests.integration.operations.sample_migrations", plugins=False)
    assert registry.names == ["backfill_story_metrics", "double_values"]
    with pytest.raises(
        Exception, match="unknown data migration 'nope'; known: backfill_story_metrics, double_values"
    ):
        registry.get("nope")
    assert DataMigrationRegistry().names == []
    listed = cli("data-migrations", "list", env=ops_env)
    assert (
        listed.returncode == 0
        and "double_values" in listed.stdout
        and "backfill_story_metrics" in listed.stdout
    )
    bad = cli("data-migrations", "run", "nope", env=ops_env)
    assert bad.returncode == 2 and "unknown data migration 'nope'" in bad.stderr


def test_backfill_story_metrics_runs_inline(ops_env, conn):
    scene = story_with_scene(conn, make_user(conn), "t")["scene"]
    conn.execute(
        "INSERT INTO images (scene_id, file_path, timings, created_at) VALUES "
        "(%s, 'a.png', '{\"gpu_s\": 1}', NOW() - INTERVAL '40 days'), (%s, 'b.png', '{\"gpu_s\": 3}', NOW())",
        (scene, scene),
    )
    ran = cli("data-migrations", "run", "backfill_story_metrics", "--inline", env=ops_env)
    assert ran.returncode == 0, ran.stderr
    days = conn.execute(
        "SELECT metadata->>'day' AS day, metric_value FROM story_metrics "
        "WHERE metric_type = 'images_generated' ORDER BY 1"
    ).fetchall()
    assert [float(d["metric_value"]) for d in days] == [1, 1]
    state = _state(conn, "backfill_story_metrics")
    assert state["status"] == "completed" and state["rows_done"] == 41
