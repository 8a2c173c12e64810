"""Test handlers that record every execution in a table, to count runs rather than statuses."""

from __future__ import annotations

import os
import time

from enchant_worker.worker.registry import Handler

# Tests create this table before a worker starts (two slots creating it at once would race).
SETUP_SQL = (
    "CREATE TABLE executions (job_id UUID NOT NULL, pid INTEGER NOT NULL, at TIMESTAMPTZ DEFAULT NOW())"
)


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


def hang_once(ctx):
    """The first attempt hangs for metadata.seconds (past its timeout); later attempts finish at once."""
    _record(ctx)
    if ctx.job.attempts == 1:
        time.sleep(float(ctx.metadata.get("seconds", 1)))
    return {"attempt": ctx.job.attempts}


def odd_values(ctx):
    """Reports progress details JSON cannot hold, outlives its lease, then returns metadata.result."""
    import numpy as np

    ctx.progress(50, loss=float("nan"), step=np.int64(3))
    ctx.progress(60, loss=np.float32(0.25))
    time.sleep(float(ctx.metadata.get("seconds", 0)))
    if ctx.metadata.get("error"):
        raise RuntimeError(ctx.metadata["error"].replace("|", "\x00"))  # "|" stands for a NUL
    return {"value": float(ctx.metadata["result"])} if "result" in ctx.metadata else {}


def poison(ctx):
    """Records, then misbehaves as metadata.kind says: `raise` raises an error whose text has a lone
    surrogate, `surrogate`/`nul`/`object` return a result Postgres cannot store, `boom` one that a test trigger
    refuses; anything else completes."""
    _record(ctx)
    kind = ctx.metadata.get("kind")
    if kind == "raise":
        raise RuntimeError("caf\udce9")
    if kind == "surrogate":
        return {"text": "caf\udce9"}
    if kind == "nul":
        return {"names": ["ok", "a\x00b"]}
    if kind == "boom":
        return {"boom": True}
    if kind == "object":
        return {"at": {1, 2}}
    return {"ok": True}


HANDLERS = [
    Handler("poison", poison, batch_size=64),
    Handler("count", count, batch_size=64),
    Handler("slow_count", slow_count),
    Handler("hang", hang_once, timeout_s=1.0),
    Handler("odd", odd_values),
]
