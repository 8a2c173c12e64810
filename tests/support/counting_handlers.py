"""Test handlers that record every execution in a table, to count runs rather than statuses."""

from __future__ import annotations

import os
import time

from enchant_worker.worker.registry import Handler

# Tests create this table before a worker starts (two slots creating it at once would race).
SETUP_SQL = "CREATE TABLE executions (job_id UUID NOT NULL, pid INTEGER NOT NULL, at TIMESTAMPTZ DEFAULT NOW())"


def _record(ctx) -> None:
    with ctx.connect() as conn:
        conn.execute("INSERT INTO executions (job_id, pid) VALUES (%s, %s)", (ctx.job.id, os.getpid()))


def count(ctx):
    _record(ctx)
    return {"pid": os.getpid()}


def slow_count(ctx):
    """Records, then sleeps metadata.seconds without looking at cancellation (a stubborn job)."""
    _record(ctx)
    time.sleep(float(ctx.metadata.get("seconds", 1)))
    return {"pid": os.getpid()}


HANDLERS = [
    Handler("count", count, batch_size=64),
    Handler("slow_count", slow_count),
    Handler("hang", slow_count, timeout_s=1.0),  # hangs past its limit when seconds > 1
]
