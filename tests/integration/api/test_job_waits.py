"""Requests that wait on a job (the AUTOMATIC1111 and OpenAI routes) wake when it ends: the end is
NOTIFYed (migration 0093) to the API's listener. A lost notification costs the fallback interval, a
dropped listener comes back, and without a session the waiters poll."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from enchant_worker.api import create_app
from enchant_worker.api import job_waits as jw
from enchant_worker.api.compat.common import wait_for_job
from enchant_worker.api.deps import ApiState
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from tests.support.waiting import wait_for

WAKE_WITHIN_S = 10.0  # far below the fallback the tests set, far above any wake-up on a loaded machine


def _state(settings, db_url, session_url) -> Iterator[ApiState]:
    state = create_app(settings, database_url=db_url, session_url=session_url).state.api
    try:
        yield state
    finally:
        state.close()


@pytest.fixture
def listening(settings, db_url) -> Iterator[ApiState]:
    yield from _state(settings, db_url, db_url)


@pytest.fixture
def polling(settings, db_url) -> Iterator[ApiState]:
    yield from _state(settings, db_url, None)


class Waiter:
    """wait_for_job in a thread; `blocked` is set once it has read the row and waits."""

    def __init__(self, state: ApiState, job_id: uuid.UUID, monkeypatch):
        self.row: dict | None = None
        self.blocked = threading.Event()
        wait = jw.Waiting.wait

        def noted(waiting, longest_s):
            self.blocked.set()
            wait(waiting, longest_s)

        monkeypatch.setattr(jw.Waiting, "wait", noted)
        self.thread = threading.Thread(target=self._run, args=(state, job_id), daemon=True)
        self.thread.start()
        assert self.blocked.wait(WAKE_WITHIN_S), "the waiter never started waiting"

    def _run(self, state: ApiState, job_id: uuid.UUID) -> None:
        self.row = wait_for_job(state, job_id, timeout_s=120)

    def result(self) -> dict:
        self.thread.join(WAKE_WITHIN_S)
        assert not self.thread.is_alive(), "the waiter did not wake"
        assert self.row is not None
        return self.row


def _leased(conn) -> tuple[JobQueue, uuid.UUID, Lease]:
    queue = JobQueue(conn)
    job_id = queue.enqueue(NewJob("noop"))
    (job,) = queue.lease("w", ["noop"])
    return queue, job_id, Lease(job.id, job.lease_token)


def test_a_jobs_end_is_notified_with_its_id_and_nothing_else_is(conn, db_url):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN enchant_done")
        queue, done_id, lease = _leased(conn)
        queue.extend([lease], {done_id: {"percent": 50}}, started={done_id})  # a heartbeat: no end
        queue.complete(lease)
        _, retried_id, retried = _leased(conn)
        assert queue.fail(retried, "transient", attempt=1, retry=True) == "pending"  # back in the queue
        _, failed_id, failed = _leased(conn)
        assert queue.fail(failed, "bad input", attempt=1, retry=False) == "failed"
        cancelled_id = queue.enqueue(NewJob("noop", {"seconds": 1}))
        queue.cancel(cancelled_id)
        notes = [n.payload for n in listener.notifies(timeout=1.0) if n.channel == "enchant_done"]
    assert notes == [str(done_id), str(failed_id), str(cancelled_id)]
    assert str(retried_id) not in notes


def test_a_waiter_wakes_when_its_job_completes(listening, conn, monkeypatch):
    monkeypatch.setattr(jw, "FALLBACK_S", 600.0)  # only the notification can wake it in time
    queue, job_id, lease = _leased(conn)
    with listening.job_waits.watch(uuid.uuid4()):  # starts the listener
        wait_for(lambda: listening.job_waits.listening, 30, "the API's listener")
    waiter = Waiter(listening, job_id, monkeypatch)
    queue.complete(lease, {"ok": True})
    row = waiter.result()
    assert row["status"] == "completed" and row["result"] == {"ok": True}


def test_a_lost_notification_costs_the_fallback_interval_not_a_hang(listening, conn, monkeypatch):
    monkeypatch.setattr(jw, "FALLBACK_S", 0.3)
    monkeypatch.setattr(jw.JobWaits, "_wake", lambda self, job_id: None)  # every notification lost
    queue, job_id, lease = _leased(conn)
    with listening.job_waits.watch(uuid.uuid4()):
        wait_for(lambda: listening.job_waits.listening, 30, "the API's listener")
    waiter = Waiter(listening, job_id, monkeypatch)
    queue.fail(lease, "bad input", attempt=1, retry=False)
    assert waiter.result()["status"] == "failed"


def test_the_listener_comes_back_after_its_connection_drops(listening, conn, db_url, monkeypatch):
    monkeypatch.setattr(jw, "FALLBACK_S", 600.0)
    with listening.job_waits.watch(uuid.uuid4()):
        wait_for(lambda: listening.job_waits.listening, 30, "the API's listener")
    dropped = conn.execute(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE '%LISTEN enchant_done'"
    ).fetchall()
    assert [r["ok"] for r in dropped] == [True]
    queue, job_id, lease = _leased(conn)
    waiter = Waiter(listening, job_id, monkeypatch)  # polls while the listener is away, then listens
    wait_for(lambda: listening.job_waits.listening, 30, "the listener back")
    queue.complete(lease)
    assert waiter.result()["status"] == "completed"


def test_without_a_session_waiters_poll(polling, conn, monkeypatch):
    queue, job_id, lease = _leased(conn)
    waiter = Waiter(polling, job_id, monkeypatch)
    assert not polling.job_waits.listening
    queue.complete(lease)
    assert waiter.result()["status"] == "completed"
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE '%LISTEN enchant_done'"
        ).fetchone()["n"]
        == 0
    )
