"""Runs a data migration batch by batch, keeping its data_migrations row current.

Each batch is one transaction holding the row's lock: read the checkpoint, migrate, store the new
checkpoint and progress, commit. So a crash (the worker killed mid-batch) rolls back that batch only and
the next run continues from the last commit; two runners of one migration take turns instead of
migrating the same rows; and a batch that raises leaves the batches before it migrated, the migration
`failed` with the error, and a rerun continues where it stopped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from enchant_worker.data_migrations.registry import DataMigration
from enchant_worker.db.connection import Connection, one
from enchant_worker.domain.jobs import NewJob
from enchant_worker.errors import JobCancelled
from enchant_worker.queue import JobQueue
from enchant_worker.sql import q

log = logging.getLogger(__name__)

JOB_TYPE = "data_migration"


def run_data_migration(
    conn: Connection,
    migration: DataMigration,
    *,
    batch_size: int,
    progress: Callable[[float], None] = lambda p: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Runs `migration` to the end from its checkpoint. `conn` must be in autocommit mode.
    Raises what a batch raised (after recording it), or JobCancelled when `cancelled()` turned true."""
    name = migration.name
    limit = migration.batch_size or batch_size
    row = one(
        conn.execute(
            q("register_data_migration"),
            {"name": name, "from_version": migration.from_version, "to_version": migration.to_version},
        )
    )
    if row["status"] == "completed":
        return {"migration": name, "status": "completed", "rows": row["rows_done"], "already_completed": True}
    try:
        total = int(migration.count(conn))
    except Exception as exc:
        _fail(conn, name, exc)
        raise
    conn.execute(q("start_data_migration"), {"name": name, "total": total})
    log.info("data migration %s: %d unit(s) in all, batches of %d", name, total, limit)
    while True:
        if cancelled():
            conn.execute(q("pause_data_migration"), {"name": name})
            raise JobCancelled(
                f"data migration {name} stopped; it continues from its checkpoint when run again"
            )
        try:
            with conn.transaction():
                state = one(conn.execute(q("lock_data_migration"), {"name": name}))
                done, checkpoint = migration.batch(conn, state["checkpoint"], limit)
                if done:
                    advanced = one(
                        conn.execute(
                            q("advance_data_migration"),
                            {"name": name, "rows": int(done), "checkpoint": Jsonb(checkpoint)},
                        )
                    )
        except Exception as exc:
            _fail(conn, name, exc)
            raise
        if not done:
            break
        progress(advanced["progress_percent"])
    conn.execute(q("complete_data_migration"), {"name": name})
    final = one(conn.execute(q("get_data_migration"), {"name": name}))
    log.info("data migration %s completed (%d unit(s))", name, final["rows_done"])
    return {"migration": name, "status": "completed", "rows": final["rows_done"]}


def _fail(conn: Connection, name: str, exc: Exception) -> None:
    message = f"{type(exc).__name__}: {exc}"[:4000]
    log.error("data migration %s failed: %s", name, message)
    try:
        conn.execute(q("fail_data_migration"), {"name": name, "error": message})
    except psycopg.Error:  # the database went away: the job's own failure still carries the message
        log.exception("could not record the failure of data migration %s", name)


def enqueue_data_migration(conn: Connection, migration: DataMigration) -> tuple[uuid.UUID, str]:
    """Queues a `data_migration` job for the migration; returns (job id, what happened).

    One job per migration (idempotency key): asked again while it is pending or running, the same job
    is returned; after it failed or was cancelled, it is queued again and continues from its checkpoint.
    """
    conn.execute(
        q("register_data_migration"),
        {"name": migration.name, "from_version": migration.from_version, "to_version": migration.to_version},
    )
    queue = JobQueue(conn)
    job_id = queue.enqueue(
        NewJob(
            JOB_TYPE,
            {"name": migration.name},
            priority=7,
            entity_type="data_migration",
            idempotency_key=f"{JOB_TYPE}:{migration.name}",
        )
    )
    job = queue.get(job_id)
    if job.status in ("failed", "cancelled"):
        queue.retry(job_id)
        return job_id, "queued again; it continues from its checkpoint"
    if job.status == "completed":
        return job_id, "already completed"
    return job_id, "queued" if job.status == "pending" and job.attempts == 0 else f"already {job.status}"


def status(conn: Connection) -> list[dict[str, Any]]:
    return conn.execute(q("list_data_migrations")).fetchall()
