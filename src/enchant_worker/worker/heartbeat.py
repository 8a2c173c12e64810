"""The heartbeat: a thread that renews the leases of the jobs a worker holds (storing their progress) and
records the worker as alive, on the worker's bookkeeping connection (worker/bookkeeping.py). What it
learns goes to the watchdog (timeouts, cancels, lost leases), which also reaps the expired leases of dead
workers now and then. It never waits on the jobs' work, so a job busy on the GPU keeps its lease."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from enchant_worker.config import Settings
from enchant_worker.db.connection import Database
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.affinity import Warm
from enchant_worker.worker import watchdog
from enchant_worker.worker.bookkeeping import SharedQueue
from enchant_worker.worker.context import JobContext

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.5  # progress may wake the heartbeat early, but not more often than this


class Heartbeat:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        worker_id: str,
        held: Callable[[], dict[Lease, JobContext[Any]]],
        counters: Callable[[], tuple[int, int]],
        status: Callable[[], str],
        resident: Callable[[], Warm] = Warm,
        shared: SharedQueue | None = None,
    ):
        self.db = db
        self.settings = settings
        self.worker_id = worker_id
        self.held = held
        self.counters = counters
        self.status = status
        self.resident = resident  # recorded on the worker's row for admins
        self.reaper = watchdog.Reaper(settings.reap_interval_s)
        # The worker's bookkeeping connection, shared with leasing and finishing; else one of its own.
        self._own = shared is None
        self.shared = shared or SharedQueue(self._open)
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
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.shared.run(self.tick)
            except Exception as exc:  # the database away, or anything else: never let this thread die
                log.warning("heartbeat failed (%s); will retry", str(exc).strip() or type(exc).__name__)
                self.shared.close()
            self.wake.wait(self.settings.heartbeat_seconds)
            self.wake.clear()
            self._stop.wait(max(0.0, MIN_INTERVAL_S - (time.monotonic() - started)))
        if self._own:
            self.shared.close()

    def _open(self) -> JobQueue:
        return JobQueue(self.db.open(), lease_s=self.settings.lease_seconds)

    def tick(self, queue: JobQueue) -> None:
        """One round: hung jobs failed, the other leases renewed, cancels and lost leases acted on, dead
        workers' jobs taken back (every ENCHANT_REAP_INTERVAL_S), the worker's row updated."""
        held = self.held()
        watchdog.stop_hung(queue, held)
        renewed = self.beat(queue, held)
        watchdog.stop_cancelled(renewed, held, self.held())  # a job finished meanwhile is gone, not lost
        self.reaper.maybe(queue)
        completed, failed = self.counters()
        queue.worker_heartbeat(
            self.worker_id,
            [le.job_id for le in held],
            status=self.status(),
            completed=completed,
            failed=failed,
            resident=self.resident(),
        )

    @staticmethod
    def beat(queue: JobQueue, held: dict[Lease, JobContext[Any]]) -> dict[uuid.UUID, bool]:
        """Renews the leases of `held`, storing progress and marking started jobs as running; returns
        {job id: cancel requested} for the leases still this worker's."""
        progress = {lease.job_id: p for lease, ctx in held.items() if (p := ctx.take_progress())}
        return queue.extend(
            list(held), progress, started={le.job_id for le, ctx in held.items() if ctx.started}
        )
