"""The maintenance tasks: each a small function of a TaskContext returning a summary for the record.

Every task is safe to run at any time and concurrently with itself (another scheduler's tick, or
`enchant-worker maintenance run TASK` while the scheduler runs): they lock rows with SKIP LOCKED, take a
transaction-level advisory lock, or upsert.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker.analytics import rollup
from enchant_worker.config import Settings
from enchant_worker.db.connection import Database
from enchant_worker.domain.jobs import NewJob
from enchant_worker.errors import ConfigurationError
from enchant_worker.queue import JobQueue
from enchant_worker.queue.archive import archive_finished_jobs
from enchant_worker.queue.reaping import reap_expired
from enchant_worker.scheduling.schedule import Every, RecurringJob, Timing, load_schedule, parse_every
from enchant_worker.sql import q

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    db: Database
    settings: Settings
    tick: datetime
    options: dict[str, float] = field(default_factory=dict)  # the task's settings in configs/schedule.toml


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[TaskContext], dict[str, Any]]
    description: str
    default_timing: Callable[[Settings], Timing]
    options: dict[str, float] = field(default_factory=dict)  # settings it takes besides its timing, defaults


# -- the tasks ----------------------------------------------------------------------------------


def reap_leases(ctx: TaskContext) -> dict[str, Any]:
    with ctx.db.connection() as conn:
        return reap_expired(JobQueue(conn, lease_s=ctx.settings.lease_seconds))


def create_partitions(ctx: TaskContext) -> dict[str, Any]:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            q("create_images_partitions"), {"ahead": ctx.settings.partitions_ahead}
        ).fetchall()
    return {"partitions": [r["partition"] for r in rows]}


def refresh_statistics(ctx: TaskContext) -> dict[str, Any]:
    with ctx.db.connection() as conn:
        row = conn.execute(q("statistics_populated")).fetchone()
        concurrently = bool(row and row["ispopulated"])
        conn.execute(q("refresh_statistics_concurrently" if concurrently else "refresh_statistics"))
    return {"concurrently": concurrently}


def archive_jobs(ctx: TaskContext) -> dict[str, Any]:
    older_than_s = ctx.settings.job_retention_days * 86400
    with ctx.db.connection() as conn:
        moved = archive_finished_jobs(
            conn, older_than_s=older_than_s, batch_size=ctx.settings.archive_batch_size
        )
        pruned = conn.execute(
            q("prune_runs"), {"keep_s": ctx.settings.maintenance_runs_keep_days * 86400}
        ).rowcount
    return {"archived": moved, "runs_pruned": pruned}


def record_metrics(ctx: TaskContext) -> dict[str, Any]:
    today = ctx.tick.astimezone(UTC).date()
    first = today - timedelta(days=ctx.settings.metrics_days_back)
    with ctx.db.connection() as conn:
        rows = record_story_metrics(conn, first, today)
    return {"from": first.isoformat(), "to": today.isoformat(), "stories": rows}


def record_story_metrics(conn, first_day, last_day) -> int:
    """Upserts the daily story metrics of [first_day, last_day]; returns how many stories had activity."""
    rows = conn.execute(q("record_story_metrics"), {"from_day": first_day, "to_day": last_day}).fetchall()
    return len({r["story_id"] for r in rows})


def rollup_events(ctx: TaskContext) -> dict[str, Any]:
    today = ctx.tick.astimezone(UTC).date()
    with ctx.db.connection() as conn:
        return rollup.rollup_events(conn, today - timedelta(days=ctx.settings.metrics_days_back), today)


def expire_events(ctx: TaskContext) -> dict[str, Any]:
    retention_days = ctx.options.get("retention_days", rollup.DEFAULT_RETENTION_DAYS)
    before = rollup.expiry_cutoff(ctx.tick, retention_days, ctx.settings.metrics_days_back)
    with ctx.db.connection() as conn:
        deleted = rollup.expire_events(conn, before)
        pruned = conn.execute(q("prune_image_ratings")).rowcount
    return {
        "retention_days": retention_days,
        "before": before.isoformat(),
        "deleted": deleted,
        "ratings_of_deleted_images": pruned,
    }


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "reap_leases",
            reap_leases,
            "return jobs whose worker stopped heartbeating to the queue (or fail them)",
            lambda s: Every(s.reap_interval_s),
        ),
        Task(
            "create_partitions",
            create_partitions,
            "create the images partitions of this month and the next ENCHANT_PARTITIONS_AHEAD months",
            lambda s: parse_every("1h"),
        ),
        Task(
            "refresh_statistics",
            refresh_statistics,
            "refresh the story_statistics view concurrently",
            lambda s: parse_every("5m"),
        ),
        Task(
            "archive_jobs",
            archive_jobs,
            "move jobs finished more than ENCHANT_JOB_RETENTION_DAYS ago into processing_jobs_history",
            lambda s: parse_every("1h"),
        ),
        Task(
            "record_metrics",
            record_metrics,
            "record today's (and yesterday's) story_metrics: images, GPU seconds, seconds per image, failures",
            lambda s: parse_every("15m"),
        ),
        Task(
            "rollup_events",
            rollup_events,
            "roll today's (and yesterday's) analytics events up into story_metrics (views, reading time, image "
            "ratings) and images.user_rating",
            lambda s: parse_every("15m"),
        ),
        Task(
            "expire_events",
            expire_events,
            "delete raw analytics events older than retention_days (whole UTC days, never unrolled ones)",
            lambda s: parse_every("1d"),
            {"retention_days": rollup.DEFAULT_RETENTION_DAYS},
        ),
    )
}


def default_timings(settings: Settings) -> dict[str, Timing]:
    return {name: task.default_timing(settings) for name, task in TASKS.items()}


def task_options() -> dict[str, dict[str, float]]:
    """The settings each task takes in configs/schedule.toml besides its timing, with their defaults."""
    return {name: dict(task.options) for name, task in TASKS.items() if task.options}


def schedule_options(settings: Settings, name: str) -> dict[str, float]:
    """A task's settings as configs/schedule.toml (ENCHANT_SCHEDULE_FILE) gives them."""
    config = load_schedule(
        settings.schedule_path,
        default_timings(settings),
        timezone=settings.schedule_timezone,
        task_options=task_options(),
    )
    return config.options.get(name, {})


def get_task(name: str) -> Task:
    task = TASKS.get(name)
    if task is None:
        raise ConfigurationError(f"unknown maintenance task {name!r}; known: {', '.join(TASKS)}")
    return task


# -- recurring jobs -----------------------------------------------------------------------------


def enqueue_recurring(db: Database, job: RecurringJob, tick: datetime) -> dict[str, Any]:
    """Enqueues the job of one tick. The idempotency key (name + tick) makes it one job however many
    schedulers, or leaders in turn, enqueue that tick."""
    key = f"schedule:{job.name}:{tick.astimezone(UTC).isoformat()}"
    with db.connection() as conn:
        job_id = JobQueue(conn).enqueue(
            NewJob(
                job.job_type,
                dict(job.metadata),
                priority=job.priority,
                max_attempts=job.max_attempts,
                idempotency_key=key,
            )
        )
    return {"job_id": str(job_id), "idempotency_key": key}


# -- running with a claim on the tick -----------------------------------------------------------


def runner_identity(role: str = "scheduler") -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


def run_claimed(
    db: Database, task: str, tick: datetime, action: Callable[[], dict[str, Any]], *, ran_by: str
) -> dict[str, Any] | None:
    """Runs `action` if this tick of `task` is not claimed yet; records its outcome. Returns the result,
    or None when the tick was taken (by another scheduler, or run already)."""
    with db.connection() as conn:
        if conn.execute(q("claim_tick"), {"task": task, "tick": tick, "ran_by": ran_by}).fetchone() is None:
            return None
    try:
        result = action()
    except Exception as exc:
        _finish(db, task, tick, "failed", None, f"{type(exc).__name__}: {exc}")
        raise
    _finish(db, task, tick, "completed", result, None)
    return result


def _finish(
    db: Database, task: str, tick: datetime, status: str, result: dict | None, error: str | None
) -> None:
    with db.connection() as conn:
        conn.execute(
            q("finish_run"),
            {
                "task": task,
                "tick": tick,
                "status": status,
                "result": Jsonb(result) if result is not None else None,
                "error": error[:4000] if error else None,
            },
        )


def run_now(name: str, db: Database, settings: Settings) -> dict[str, Any]:
    """`enchant-worker maintenance run TASK`: runs a task at once, recorded like a scheduled run."""
    task = get_task(name)
    now = datetime.now(UTC)
    ctx = TaskContext(db, settings, now, schedule_options(settings, name))
    result = run_claimed(db, name, now, lambda: task.run(ctx), ran_by=runner_identity("cli"))
    return result or {}


def last_runs(db: Database) -> dict[str, dict[str, Any]]:
    with db.connection() as conn:
        return {r["task"]: r for r in conn.execute(q("last_runs"))}
