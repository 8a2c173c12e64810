"""Wakes the requests that wait on a job (the AUTOMATIC1111 and OpenAI routes answer when their job has
finished): one LISTEN connection per API process on the channel a job's end notifies (migration 0093),
and an event per waiting request.

The job's row stays the truth: a notification only says "read it again". A waiter reads the row after
registering its event, so an end committed after that read is always announced; the listener wakes every
waiter whenever it (re)connects, since jobs may have ended while nobody listened; and a waiter reads again
at least every FALLBACK_S anyway, so a lost notification costs seconds, never a hang. Without a session
(ENCHANT_DATABASE_URL a pooler in transaction mode and no ENCHANT_DIRECT_DATABASE_URL) waiters poll.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from enchant_worker.db.connection import connect
from enchant_worker.sql import q

log = logging.getLogger(__name__)

DONE_CHANNEL = "enchant_done"
FALLBACK_S = 2.0  # listening: the row is read again at least this often, in case a notification was lost
POLL_FIRST_S, POLL_MAX_S = 0.005, 0.02  # not listening: read again at these intervals (growing)
STOP_CHECK_S = 0.25  # how often the listener looks up from its socket to see whether it should stop


class Waiting:
    """One request's wait: `wait()` returns when the job may have changed, or after the interval."""

    def __init__(self, waits: JobWaits):
        self._waits = waits
        self._event = threading.Event()
        self._delay = POLL_FIRST_S
        self._listened = False

    def arm(self) -> None:
        """Call before each read of the row: what wakes the wait after it is what happens after the read."""
        self._listened = self._waits.listening
        self._event.clear()

    def wait(self, longest_s: float) -> None:
        if self._listened:
            self._event.wait(min(FALLBACK_S, longest_s))
            return
        self._event.wait(min(self._delay, longest_s))  # the listener may come up meanwhile: it wakes us
        self._delay = min(self._delay * 1.5, POLL_MAX_S)


class JobWaits:
    def __init__(self, session_url: str | None):
        self.session_url = session_url
        self._waiting: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    @contextmanager
    def watch(self, job_id: uuid.UUID) -> Iterator[Waiting]:
        """Register a wait on `job_id` (starting the listener on first use); arm it before each read."""
        waiting = Waiting(self)
        key = str(job_id)
        with self._lock:
            self._waiting.setdefault(key, set()).add(waiting._event)
            if self._thread is None and self.session_url is not None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._listen, name="job-waits", daemon=True)
                self._thread.start()
        try:
            yield waiting
        finally:
            with self._lock:
                events = self._waiting.get(key, set())
                events.discard(waiting._event)
                if not events:
                    self._waiting.pop(key, None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with connect(self.session_url) as conn:  # type: ignore[arg-type]
                    conn.execute(q("listen_job_done"))
                    self._listening.set()
                    self._wake_all()  # a job may have ended while nobody listened
                    delay = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=STOP_CHECK_S):
                            self._wake(note.payload)
            except Exception as exc:  # the database away, or anything else: never let this thread die
                self._listening.clear()
                self._wake_all()  # waiters poll until the listener is back
                log.warning(
                    "the API's job listener lost its connection (%s); requests waiting on jobs poll "
                    "until it is back",
                    str(exc).strip() or type(exc).__name__,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
        self._listening.clear()

    def _wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiting.get(job_id, ()):
                event.set()

    def _wake_all(self) -> None:
        with self._lock:
            for events in self._waiting.values():
                for event in events:
                    event.set()
