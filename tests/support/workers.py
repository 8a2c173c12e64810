"""Workers in threads of the test process, for tests that drive the real worker loop."""

from __future__ import annotations

import threading

from enchant_worker.handlers import default_registry
from enchant_worker.worker.runner import Worker


class WorkerThreads:
    def __init__(self, db, settings):
        self.db = db
        self.settings = settings
        self.started: list[tuple[Worker, threading.Thread]] = []

    def start(
        self, *, types=None, concurrency: int = 1, burst: bool = False, module: str | None = None, **overrides
    ) -> tuple[Worker, threading.Thread]:
        """A worker with these settings overrides, running in its own thread; returns (worker, thread)."""
        registry = default_registry(plugins=False, module=module)
        worker = Worker(
            self.db,
            self.settings.model_copy(update=overrides),
            registry,
            job_types=list(types) if types else None,
            concurrency=concurrency,
            burst=burst,
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.started.append((worker, thread))
        return worker, thread

    def stop_all(self, timeout_s: float = 30.0) -> None:
        for worker, thread in self.started:
            worker.stop(now=True)
            thread.join(timeout=timeout_s)
