"""What a handler sees of its job: the input, progress, cancellation, a logger, the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enchant_worker.domain.jobs import Job


@dataclass
class JobContext:
    """Handed to a handler for one job.

    `progress()` and `is_cancelled()` are cheap: progress is written by the heartbeat thread, and the
    cancel flag is set by the heartbeat or by a NOTIFY, so a handler may call both at every step.
    """

    job: Job
    log: logging.Logger
    connect: Callable[[], Any]  # a context manager giving a psycopg connection (pooled)
    settings: Any
    spec: Any = None  # the metadata as validated by the handler's `validate`
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None  # 'cancel_requested', 'lease_lost', 'timeout' or 'shutdown'
    deadline: float | None = None  # time.monotonic() past which the job has timed out
    timeout_s: float | None = None
    on_progress: Callable[[], None] = lambda: None
    preempt_check: Callable[[], bool] = lambda: False
    _progress: dict[str, Any] = field(default_factory=dict)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.job.metadata

    def progress(self, percent: float, **info: Any) -> None:
        """Record progress (0-100) and optional details (step, loss, eta_s...) shown on the job."""
        with self._progress_lock:
            self._progress = {"percent": max(0, min(100, int(percent))), "info": info or None}
        self.on_progress()

    def take_progress(self) -> dict[str, Any] | None:
        with self._progress_lock:
            value, self._progress = self._progress, {}
        return value or None

    def cancel(self, reason: str) -> None:
        if not self.cancel_event.is_set():
            self.cancel_reason = reason
            self.cancel_event.set()

    def is_cancelled(self) -> bool:
        """True once the job was cancelled, its lease was lost, or the worker is shutting down."""
        return self.cancel_event.is_set()

    def should_yield(self) -> bool:
        """True when more urgent work waits and a long job should checkpoint and hand itself back."""
        return self.preempt_check()
