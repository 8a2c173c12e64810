"""Retention: finished jobs older than a period move to processing_jobs_history.

Lives in the queue package because only the queue writes processing_jobs; the scheduler calls it.
"""

from __future__ import annotations

from enchant_worker.db.connection import Connection
from enchant_worker.sql import q


def archive_finished_jobs(
    conn: Connection, *, older_than_s: float, batch_size: int = 5000, max_batches: int = 1000
) -> int:
    """Moves jobs that finished more than `older_than_s` ago, one batch (one short transaction) at a
    time; returns how many moved."""
    moved = 0
    for _ in range(max_batches):
        count = conn.execute(
            q("archive_finished_jobs"), {"older_than_s": older_than_s, "limit": batch_size}
        ).rowcount
        moved += max(count, 0)
        if count < batch_size:
            break
    return moved
