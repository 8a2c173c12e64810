"""LISTEN for new work and for cancellations on a connection of its own, so an idle worker starts a
job inserted by plain SQL within milliseconds. Polling in the worker loop is the fallback when the
listener is down, and the only way behind a pooler in transaction mode without ENCHANT_DIRECT_DATABASE_URL
(the worker then starts no listener)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection

from enchant_worker.db.connection import Database
from enchant_worker.sql import q

log = logging.getLogger(__name__)

JOBS_CHANNEL = "enchant_jobs"  # the names the triggers of migrations 0001 and 0010 notify
CANCEL_CHANNEL = "enchant_cancel"
STOP_CHECK_S = 0.1  # how often the listener looks up from the socket to see whether it should stop


class Listener:
    def __init__(
        self,
        db: Database,
        job_types: Collection[str],
        on_work: Callable[[], None],
        on_cancel: Callable[[uuid.UUID], None],
    ):
        self.db = db
        self.job_types = set(job_types)
        self.on_work = on_work
        self.on_cancel = on_cancel
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        self.ready.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with self.db.open_session() as conn:  # the server itself: a pooler cannot LISTEN
                    conn.execute(q("listen_for_work"))
                    self.ready.set()
                    delay = 0.5
                    self.on_work()  # anything inserted while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=STOP_CHECK_S):
                            self._dispatch(note.channel, note.payload)
            except Exception as exc:  # the database away, or anything else: never let this thread die
                self.ready.clear()
                log.warning(
                    "listener lost its connection (%s); polling until it is back",
                    str(exc).strip() or type(exc).__name__,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == JOBS_CHANNEL:
            if payload in self.job_types:
                self.on_work()
        elif channel == CANCEL_CHANNEL:
            try:
                self.on_cancel(uuid.UUID(payload))
            except ValueError:
                pass
