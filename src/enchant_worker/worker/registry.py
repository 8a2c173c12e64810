"""Handlers by job type: the registry a worker is given (`handlers.default_registry` builds it from the
built-in handlers, installed plugins of the entry point group `enchant_worker.handlers`, and a module
named with `--handlers`)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic

from enchant_worker.errors import ConfigurationError
from enchant_worker.worker.context import JobContext, Spec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "enchant_worker.handlers"


@dataclass(frozen=True)
class Handler(Generic[Spec]):
    """How to run one job type.

    validate: turns metadata into the spec `run` receives as `ctx.spec`, or raises InvalidJob naming the
      field (the job then fails at once, without retries); without it, `ctx.spec` is the metadata.
    batch_size: how many jobs of this type one lease may take per slot. Only for short jobs: a worker
      prefetches only when every type it serves allows it; GPU jobs are leased one at a time.
    gpu: the handler needs the accelerator (the worker reports its device).
    timeout_s: a job running longer has hung: it is failed (and retried) by the heartbeat, which is
      the only way to take back a job from a handler that never returns while its worker lives.
    resident: what the handler keeps loaded, as the job keys it can start without loading anything
      (a queue.affinity.Warm, from the settings); asked before every lease, so it must be cheap.
    run_batch: runs several jobs leased together for one batched GPU call (cross-job batching,
      ENCHANT_GENERATION_BATCH_SIZE); one answer per job, its result or its own error.
    """

    job_type: str
    run: Callable[[JobContext[Spec]], dict[str, Any] | None]
    validate: Callable[[dict[str, Any]], Spec] | None = None
    batch_size: int = 1
    gpu: bool = False
    timeout_s: float | None = None
    description: str = ""
    resident: Callable[[Any], Any] | None = None
    run_batch: Callable[[list[JobContext[Spec]]], list[dict[str, Any] | Exception]] | None = None


class Registry:
    def __init__(self, handlers: Iterable[Handler[Any]] = ()):
        self._handlers: dict[str, Handler[Any]] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: Handler[Any]) -> None:
        if not isinstance(handler, Handler):
            raise ConfigurationError(f"{handler!r} is not a Handler")
        self._handlers[handler.job_type] = handler

    def get(self, job_type: str) -> Handler[Any] | None:
        return self._handlers.get(job_type)

    def __getitem__(self, job_type: str) -> Handler[Any]:
        return self._handlers[job_type]

    def __contains__(self, job_type: str) -> bool:
        return job_type in self._handlers

    @property
    def job_types(self) -> list[str]:
        return sorted(self._handlers)

    def select(self, job_types: Iterable[str] | None) -> list[Handler[Any]]:
        """The handlers a worker serves; unknown names are refused with the known ones listed."""
        if not job_types:
            return [self._handlers[t] for t in self.job_types]
        wanted = list(job_types)
        unknown = [t for t in wanted if t not in self._handlers]
        if unknown:
            raise ConfigurationError(
                f"no handler for job type(s) {', '.join(unknown)}; known: {', '.join(self.job_types)}"
            )
        return [self._handlers[t] for t in wanted]

    def load_module(self, name: str) -> None:
        """Imports a module and registers every Handler it exposes in a HANDLERS list (or registers
        itself on import through `register`)."""
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import handlers module {name!r}: {exc}") from exc
        for handler in getattr(module, "HANDLERS", []):
            self.register(handler)

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not stop the worker
                log.error("handler plugin %s could not be loaded: %s", ep.name, exc)
                continue
            for handler in loaded if isinstance(loaded, list | tuple) else [loaded]:
                self.register(handler)
