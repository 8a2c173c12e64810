"""Logs people can read: one INFO line when a job starts and one when it ends, naming it."""

import logging

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.queue import JobQueue
from tests.support.counting_handlers import SETUP_SQL
from tests.support.waiting import wait_for
from tests.support.workers import WorkerThreads


@pytest.fixture
def start_worker(db, settings, conn):
    conn.execute(SETUP_SQL)
    workers = WorkerThreads(db, settings)
    yield lambda **kw: workers.start(module="tests.support.counting_handlers", **kw)
    workers.stop_all()


def test_one_line_when_a_job_starts_and_one_when_it_ends(start_worker, conn, caplog):
    caplog.set_level(logging.INFO, logger="enchant_worker.worker.runner")
    queue = JobQueue(conn)
    good = queue.enqueue(NewJob("noop"))
    bad = queue.enqueue(NewJob("noop", {"fail": "disk on fire"}, max_attempts=1))
    start_worker(types=["noop"])
    wait_for(
        lambda: queue.get(good).status == JobStatus.COMPLETED and queue.get(bad).status == JobStatus.FAILED
    )
    wait_for(lambda: sum(f"job {bad} ended" in r.getMessage() for r in caplog.records) == 1)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [m for m in lines if m.startswith(f"job {good} started")] == [
        f"job {good} started: noop, user -, attempt 1 of 3"
    ]
    [ended] = [m for m in lines if m.startswith(f"job {good} ended")]
    assert ended.startswith(f"job {good} ended: noop, user -, attempt 1, ") and ended.endswith("s, completed")
    [failed] = [m for m in lines if m.startswith(f"job {bad} ended")]
    assert failed.endswith("failed (RuntimeError: disk on fire)")
