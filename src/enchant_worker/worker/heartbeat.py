"""The heartbeat: a thread with its own connection that renews the leases of the jobs a worker holds,
stores their progress, notices cancellation and lost leases, and reaps expired leases now and then.
It never waits on the jobs' work, so a job busy on the GPU keeps its lease."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from enchant_worker.config import Settings
from enchant_worker.db.connection import Database
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.worker.context import JobContext

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.5  # progress may wake the heartbeat early, but not more often than this


class Heartbeat:
    def __init__(self, db: Database, settings: Settings, worker_id: str,
                 held: Callable[[], dict[Lease, JobContext[Any]]],
                 counters: Callable[[], tuple[int, int]], status: Callable[[], str]):
        self.db = db
        self.settings = settings
        self.worker_id = worker_id
        self.held = held
        self.counters = counters
        self.status = status
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last_reap = 0.0
        queue: JobQueue | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if queue is None:
                    queue = self._open()
                self.beat(queue)
                if started - last_reap >= self.settings.reap_interval_s:
                    last_reap = started
                    log_reaped(queue.reap())
            except Exception as exc:  # the database away, or anything else: never let this thread die
                log.warning("heartbeat failed (%s); will retry", str(exc).strip() or type(exc).__name__)
                if queue is not None:
                    queue.conn.close()
                queue = None
            self.wake.wait(self.settings.heartbeat_seconds)
            self.wake.clear()
            self._stop.wait(max(0.0, MIN_INTERVAL_S - (time.monotonic() - started)))
        if queue is not None:
            queue.conn.close()

    def _open(self) -> JobQueue:
        return JobQueue(self.db.open(), lease_s=self.settings.lease_seconds)

    def beat(self, queue: JobQueue) -> None:
        held = self.held()
        now = time.monotonic()
        for lease, ctx in list(held.items()):
            if ctx.deadline is not None and now > ctx.deadline and not ctx.timed_out:
                # A hung handler: fail the job (retried elsewhere with a new token, so whatever the
                # handler writes if it ever returns is refused) and stop renewing its lease.
                ctx.timed_out = True
                ctx.cancel("timeout")
                queue.fail(lease, f"timed out: ran past its {ctx.timeout_s:g} s limit", attempt=ctx.job.attempts)
                log.error("job %s timed out; its slot stays busy until the handler returns", lease.job_id)
            if ctx.timed_out:
                del held[lease]
        progress = {lease.job_id: p for lease, ctx in held.items() if (p := ctx.take_progress())}
        alive = queue.extend(list(held), progress, started={le.job_id for le, ctx in held.items() if ctx.started})
        still_held = self.held()  # a job finished while we renewed is gone, not lost
        for lease, ctx in held.items():
            if lease not in still_held or ctx.finishing:
                continue  # finished by this worker (its slot reports a lease that was really lost)
            if lease.job_id not in alive:
                if not ctx.is_cancelled():
                    log.warning("lost the lease of job %s; stopping it", lease.job_id)
                ctx.cancel("lease_lost")
            elif alive[lease.job_id]:
                ctx.cancel("cancel_requested")
        completed, failed = self.counters()
        queue.worker_heartbeat(self.worker_id, [le.job_id for le in held], status=self.status(),
                               completed=completed, failed=failed)


def log_reaped(rows: list[dict[str, Any]]) -> None:
    """One line per dead worker: how many of its jobs were running (their attempt spent) and how many it
    only held (handed back unspent)."""
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_worker.setdefault(row["leased_by"] or "(unknown)", []).append(row)
    for worker, reaped in by_worker.items():
        ran = [r for r in reaped if r["started"]]
        failed = sum(1 for r in ran if r["status"] == "failed")
        log.warning("worker %s stopped heartbeating: took back %d job(s) it was running (%d failed for good, "
                    "attempts spent) and %d it held but never started (no attempt spent)",
                    worker, len(ran), failed, len(reaped) - len(ran))
