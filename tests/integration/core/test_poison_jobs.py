"""Poison jobs fail, they never loop: outcomes Postgres cannot store, and a worker slot that breaks, in
the middle of prefetched batches, against a real Postgres."""

import threading

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.handlers import default_registry
from enchant_worker.queue import JobQueue
from enchant_worker.worker.runner import UNSTORED_OUTCOME, Worker
from tests.support.counting_handlers import SETUP_SQL
from tests.support.workers import WorkerThreads

DRAIN_TIMEOUT_S = 90  # the old code looped for ever here: a burst worker that does not exit fails the test


@pytest.fixture
def queue(conn):
    conn.execute(SETUP_SQL)
    return JobQueue(conn)


@pytest.fixture
def drain(db, settings):
    """Runs one burst worker of the `poison` test handler until nothing is runnable; returns the worker."""
    workers = WorkerThreads(db, settings)

    def run(**overrides):
        worker, thread = workers.start(
            module="tests.support.counting_handlers",
            types=["poison"],
            burst=True,
            retry_base_s=0,
            retry_max_s=0,
            **overrides,
        )
        thread.join(timeout=DRAIN_TIMEOUT_S)
        assert not thread.is_alive(), "the worker never ran out of work: a job loops"
        return worker

    yield run
    workers.stop_all()


def enqueue_batch(queue, bad_kind, *, size=50, at=25, max_attempts=3):
    """A warm-up of short jobs (so the worker prefetches), then `size` jobs with a bad one at `at`."""
    queue.enqueue_many([NewJob("poison") for _ in range(30)])
    ids = queue.enqueue_many(
        [
            NewJob("poison", {"kind": bad_kind} if i == at else {}, max_attempts=max_attempts)
            for i in range(size)
        ]
    )
    return ids[at], [job_id for i, job_id in enumerate(ids) if i != at]


def runs(conn):
    return {
        r["job_id"]: r["n"]
        for r in conn.execute("SELECT job_id, count(*) AS n FROM executions GROUP BY job_id")
    }


def assert_the_others_completed_once(queue, conn, bad):
    executions = runs(conn)
    others = [j for j in queue.list(limit=1000) if j.id != bad]
    assert len(others) == 79
    assert {j.status for j in others} == {JobStatus.COMPLETED}
    assert {executions[j.id] for j in others} == {1}


def test_an_error_text_with_a_lone_surrogate_fails_the_job_after_its_attempts(queue, conn, drain):
    # The reproduction: RuntimeError("caf\udce9") could not be stored, the job went back with its attempt
    # refunded and ran ~100 times a second for ever, and the rest of its batch stayed `processing`.
    bad, _ = enqueue_batch(queue, "raise", max_attempts=3)
    drain()
    job = queue.get(bad)
    assert job.status == JobStatus.FAILED and job.attempts == 3 and job.errors == 3
    assert job.error_message == "RuntimeError: caf\\udce9"  # the undecodable character, escaped
    assert runs(conn)[bad] == 3
    assert_the_others_completed_once(queue, conn, bad)


@pytest.mark.parametrize(
    "kind, message",
    [
        (
            "surrogate",
            "the handler's result cannot be stored: result['text']: text contains a lone surrogate "
            "('\\udce9' at position 3)",
        ),
        ("nul", "the handler's result cannot be stored: result['names'][1]: text contains a NUL character"),
        ("object", "the handler's result cannot be stored: result['at']: a set is not a JSON value"),
    ],
)
def test_a_result_postgres_cannot_store_fails_the_job_at_once(queue, conn, drain, kind, message):
    bad, _ = enqueue_batch(queue, kind)
    drain()
    job = queue.get(bad)
    assert (
        job.status == JobStatus.FAILED and job.attempts == 1
    )  # the same result again would not store either
    assert job.error_message.startswith(message)
    assert runs(conn)[bad] == 1
    assert_the_others_completed_once(queue, conn, bad)


REFUSE_SQL = """
CREATE FUNCTION refuse_boom() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.result ? 'boom' OR ({refuse_message} AND NEW.error_message LIKE '%boom%') THEN
        RAISE EXCEPTION 'boom: this value cannot be stored' USING ERRCODE = '{code}';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_boom BEFORE UPDATE ON processing_jobs FOR EACH ROW EXECUTE FUNCTION refuse_boom();
"""


@pytest.mark.parametrize(
    "code", ["22021", "54000"]
)  # a DataError; a ProgramLimitExceeded (an OperationalError)
@pytest.mark.parametrize("refuse_message", [False, True])
def test_a_database_error_on_completing_fails_the_job_instead_of_handing_it_back(
    queue, conn, drain, code, refuse_message
):
    # The database refuses the completion (and, the second time, the error text that quotes it): the job
    # fails with a message, it is never handed back with its attempt refunded, and its batch completes.
    conn.execute(REFUSE_SQL.format(code=code, refuse_message=str(refuse_message).upper()))
    bad, _ = enqueue_batch(queue, "boom")
    drain()
    job = queue.get(bad)
    assert job.status == JobStatus.FAILED and job.attempts == 1 and runs(conn)[bad] == 1
    if refuse_message:
        assert job.error_message == UNSTORED_OUTCOME
    else:
        assert (
            job.error_message == "the handler's result could not be stored: boom: this value cannot be stored"
        )
    assert_the_others_completed_once(queue, conn, bad)


class BreaksOnce(Worker):
    """A worker with a bug: the job marked `explode` raises in the worker once, after its handler ran."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exploded = threading.Event()

    def _execute(self, lease, job, ctx):
        outcome = super()._execute(lease, job, ctx)
        if job.metadata.get("explode") and not self.exploded.is_set():
            self.exploded.set()
            raise RuntimeError("a bug in the worker")
        return outcome


def test_a_broken_slot_settles_every_job_it_holds_including_after_a_refill(queue, conn, db, settings):
    # 200 short jobs: the slot refills itself several times; the bug hits in the middle of a refilled batch.
    ids = queue.enqueue_many([NewJob("poison", {"explode": True} if i == 150 else {}) for i in range(200)])
    worker = BreaksOnce(
        db,
        settings.model_copy(update={"retry_base_s": 0, "retry_max_s": 0}),
        default_registry(plugins=False, module="tests.support.counting_handlers"),
        job_types=["poison"],
        concurrency=1,
        burst=True,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(timeout=DRAIN_TIMEOUT_S)
    assert not thread.is_alive()
    assert worker.exploded.is_set()
    jobs = {j.id: j for j in queue.list(limit=1000)}
    # nothing is left held: every job of the batch after the bug went back and ran later
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    executions = runs(conn)
    exploded = ids[150]
    # the job that was running when the slot broke spent its attempt (failed, then retried)...
    assert executions[exploded] == 2 and jobs[exploded].attempts == 2 and jobs[exploded].errors == 1
    # ...and every other job ran exactly once
    assert {executions[i] for i in ids if i != exploded} == {1}
