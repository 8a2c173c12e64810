"""`noop`: sleeps `metadata.seconds` (default 0). For tests, demos and benchmarks."""

from __future__ import annotations

import time
from typing import Any

from enchant_worker.errors import InvalidJob, JobCancelled
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

MAX_SECONDS = 3600.0


def validate(metadata: dict[str, Any]) -> float:
    seconds = metadata.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
        raise InvalidJob(f"seconds: must be a number between 0 and {MAX_SECONDS:g}, got {seconds!r}")
    if "fail" in metadata and not isinstance(metadata["fail"], str):
        raise InvalidJob("fail: must be a string (the error message to raise)")
    return float(seconds)


def run(ctx: JobContext[float]) -> dict[str, Any]:
    deadline = time.monotonic() + ctx.spec
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancel_event.wait(min(left, 0.05)):
            raise JobCancelled()
        ctx.progress(100 * (1 - left / ctx.spec))
    if "fail" in ctx.metadata:  # lets tests and demos exercise the retry path
        raise RuntimeError(ctx.metadata["fail"])
    return {"slept_s": ctx.spec}


# Short jobs: a worker serving only noop leases many at once.
HANDLER = Handler("noop", run, validate=validate, batch_size=100, description="sleep metadata.seconds")
