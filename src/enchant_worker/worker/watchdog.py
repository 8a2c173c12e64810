"""The watchdog: tells a job's handler to stop when it ran past its time limit, when its cancel was
requested, or when its lease went to another worker, and now and then takes back the jobs of dead workers
(`queue.reaping`, the one place that reaps; the scheduler calls it too). It acts on what the heartbeat
learns; the handler sees its context's cancel flag (see JobContext)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.reaping import reap_expired
from enchant_worker.worker.context import JobContext

log = logging.getLogger(__name__)


def stop_hung(queue: JobQueue, held: dict[Lease, JobContext[Any]]) -> None:
    """Fails the jobs past their time limit and drops them from `held`: they are retried elsewhere with a
    new token, so whatever a hung handler writes if it ever returns is refused, and their leases are no
    longer renewed."""
    now = time.monotonic()
    for lease, ctx in list(held.items()):
        if ctx.deadline is not None and now > ctx.deadline and not ctx.timed_out:
            ctx.timed_out = True
            ctx.cancel("timeout")
            queue.fail(lease, f"timed out: ran past its {ctx.timeout_s:g} s limit", attempt=ctx.job.attempts)
            log.error("job %s timed out; its slot stays busy until the handler returns", lease.job_id)
        if ctx.timed_out:
            del held[lease]


def stop_cancelled(
    renewed: Mapping[uuid.UUID, bool],
    held: Mapping[Lease, JobContext[Any]],
    still_held: Mapping[Lease, JobContext[Any]],
) -> None:
    """`renewed`: the heartbeat's answer for `held` (job id → cancel requested, for the leases still
    ours). A job finished by this worker meanwhile (no longer in `still_held`, or finishing) is left
    alone: its lease is gone because its slot completed it, not because it was lost."""
    for lease, ctx in held.items():
        if lease not in still_held or ctx.finishing:
            continue
        if lease.job_id not in renewed:
            if not ctx.is_cancelled():
                log.warning("lost the lease of job %s; stopping it", lease.job_id)
            ctx.cancel("lease_lost")
        elif renewed[lease.job_id]:
            ctx.cancel("cancel_requested")


class Reaper:
    """Reaps at most every `interval_s` (ENCHANT_REAP_INTERVAL_S): a fleet of workers repairs a dead
    peer's jobs without a scheduler, at one index probe per worker and interval when nothing expired."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._last = 0.0

    def maybe(self, queue: JobQueue) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            reap_expired(queue)
