"""The worker's one pooled connection for leasing, heartbeats and finishing (the connection budget,
README "Running a fleet"). Its threads take turns: one queue call (a statement or a transaction) at a
time, under a lock; each call takes milliseconds, and one connection could not run two at once anyway."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from enchant_worker.queue import JobQueue

T = TypeVar("T")


class SharedQueue:
    def __init__(self, open_queue: Callable[[], JobQueue]):
        self._open = open_queue
        self._lock = threading.RLock()  # re-entrant: a queue call made inside another cannot deadlock
        self._queue: JobQueue | None = None

    def run(self, action: Callable[[JobQueue], T]) -> T:
        """`action` on the shared queue client, (re)connecting first when needed."""
        with self._lock:
            if self._queue is None or self._queue.conn.closed or self._queue.conn.broken:
                self._queue = self._open()
            return action(self._queue)

    def close(self) -> None:
        """After database trouble: the next call connects afresh."""
        with self._lock:
            if self._queue is not None:
                self._queue.conn.close()
                self._queue = None
