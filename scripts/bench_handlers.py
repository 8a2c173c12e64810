"""Handlers for scripts/bench_queue.py (latency). Our worker loads them with `--handlers bench_handlers`
(scripts/ on PYTHONPATH); the peers' bench workers call the same `record_start`, so all three pay the same.

`bench_latency` appends "<seq> <time.time()>" to $BENCH_LATENCY_FILE the moment its handler starts.
"""

from __future__ import annotations

import os
import time

from enchant_worker.handlers.noop import HANDLER as NOOP
from enchant_worker.worker.registry import Handler


def record_start(seq) -> None:
    """First thing a benchmark handler does: note when it started (wall clock, this machine)."""
    started = time.time()
    path = os.environ.get("BENCH_LATENCY_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{seq} {started}\n")


def _latency(ctx) -> None:
    record_start(ctx.metadata["seq"])


# Prefetch as for the built-in noop handler: these jobs are as short.
HANDLERS = [
    Handler("bench_latency", _latency, batch_size=NOOP.batch_size, description="benchmark: record start time")
]
