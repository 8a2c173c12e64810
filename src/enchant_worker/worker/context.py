"""What a handler sees of its job: the input, progress, cancellation, a logger, the database."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from enchant_worker.domain.jobs import Job
from enchant_worker.errors import JobCancelled
from enchant_worker.queue.storable import json_problem

if TYPE_CHECKING:
    from enchant_worker.config import Settings
    from enchant_worker.db.connection import Connection
    from enchant_worker.worker.runner import Outcome

# Why a job's cancel flag was set: an admin asked, its lease went to another worker, it ran past its
# time, or the worker is stopping.
CancelReason = Literal["cancel_requested", "lease_lost", "timeout", "shutdown"]
Spec = TypeVar("Spec")


@dataclass
class JobContext(Generic[Spec]):
    """Handed to a handler for one job.

    `progress()` and `is_cancelled()` are cheap: progress is written by the heartbeat thread, and the
    cancel flag is set by the heartbeat or by a NOTIFY, so a handler may call both at every step.
    A handler that sees the flag stops by raising JobCancelled (`raise_if_cancelled()` does it): the
    worker then records the cancellation, or hands the job back when the worker is shutting down. A
    handler that returns normally has completed the job.
    """

    job: Job
    log: logging.Logger
    connect: Callable[[], AbstractContextManager[Connection]]  # the slot's own connection
    settings: Settings
    spec: Spec = field(init=False, repr=False)  # the handler's `validate` of the metadata, set before `run`
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: CancelReason | None = None
    deadline: float | None = None  # time.monotonic() past which the job has timed out
    timeout_s: float | None = None
    timed_out: bool = False  # set by the heartbeat, which then failed the job for retry elsewhere
    started: bool = False  # the handler was called (a prefetched job may wait in its batch before)
    finishing: bool = False  # the handler returned; the worker is writing (or will write) the outcome
    outcome: Outcome | None = None  # the handler's run, once known
    on_progress: Callable[[], None] = lambda: None
    preempt_check: Callable[[], bool] = lambda: False
    _progress: dict[str, Any] = field(default_factory=dict)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.job.metadata

    def progress(self, percent: float, **info: Any) -> None:
        """Record progress (0-100) and optional details (step, loss, eta_s...) shown on the job.
        Details that cannot be stored as JSON (NaN, tensors...) are dropped with a warning: a bad value
        must never stop the heartbeat that keeps every job's lease."""
        percent = float(percent)
        details = _storable(info, self.log) if info else None
        with self._progress_lock:
            self._progress = {
                "percent": max(0, min(100, int(percent))) if math.isfinite(percent) else 0,
                "info": details,
            }
        self.on_progress()

    def take_progress(self) -> dict[str, Any] | None:
        with self._progress_lock:
            value, self._progress = self._progress, {}
        return value or None

    def cancel(self, reason: CancelReason) -> None:
        if not self.cancel_event.is_set():
            self.cancel_reason = reason
            self.cancel_event.set()

    def is_cancelled(self) -> bool:
        """True once the job was cancelled, its lease was lost, or the worker is shutting down."""
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled()

    def should_yield(self) -> bool:
        """True when more urgent work waits and a long job should checkpoint and hand itself back."""
        return self.preempt_check()


def _storable(info: dict[str, Any], log: logging.Logger) -> dict[str, Any] | None:
    """`info` as plain JSON values (numpy/torch scalars become numbers), or None when it cannot be."""

    def plain(value: Any) -> Any:
        item = getattr(value, "item", None)  # numpy and torch scalars
        if callable(item):
            return item()
        raise TypeError(f"{type(value).__name__} is not JSON")

    try:
        value = json.loads(json.dumps(info, default=plain, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        log.warning("progress details dropped (%s): %r", exc, info)
        return None
    if problem := json_problem(value, "progress"):  # NUL or lone surrogates: the heartbeat's write would fail
        log.warning("progress details dropped (%s)", problem)
        return None
    return value  # type: ignore[no-any-return]  # json.loads of a dict's dump is a dict
