import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.errors import InvalidJob, JobNotFound
from enchant_worker.queue import JobQueue, Lease


@pytest.fixture
def queue(conn):
    return JobQueue(conn, lease_s=30, retry_base_s=1, retry_max_s=60)


def lease_of(job):
    return Lease(job.id, job.lease_token)


def test_idempotency_key_gives_one_job(queue):
    a = queue.enqueue(NewJob("noop", idempotency_key="scene-1"))
    b, c = queue.enqueue_many(
        [NewJob("noop", idempotency_key="scene-1"), NewJob("noop", idempotency_key="scene-1")]
    )
    assert a == b == c
    assert len(queue.list()) == 1


def test_priority_then_fifo(queue):
    ids = queue.enqueue_many([NewJob("noop", {"n": i}, priority=p) for i, p in enumerate([5, 1, 5, 1, 9])])
    order = [queue.lease("w", ["noop"])[0].id for _ in range(5)]
    assert order == [ids[1], ids[3], ids[0], ids[2], ids[4]]


def test_lease_takes_only_the_given_types(queue):
    queue.enqueue_many([NewJob("other"), NewJob("noop")])
    leased = queue.lease("w", ["noop"], limit=10)
    assert [j.job_type for j in leased] == ["noop"]
    assert queue.list(job_type="other")[0].status == JobStatus.PENDING


def test_run_after_is_respected(queue):
    queue.enqueue(NewJob("noop", run_after=datetime.now(UTC) + timedelta(seconds=1.5)))
    assert queue.lease("w", ["noop"]) == []
    time.sleep(1.6)
    assert len(queue.lease("w", ["noop"])) == 1


def test_lease_changes_the_token_and_stale_writes_are_refused(queue, conn):
    job_id = queue.enqueue(NewJob("noop", max_attempts=3))
    first = queue.lease("w1", ["noop"])[0]
    conn.execute(
        "UPDATE processing_jobs SET lease_expires_at = NOW() - INTERVAL '1 second' WHERE id = %s", (job_id,)
    )
    assert [r["status"] for r in queue.reap()] == ["pending"]
    second = queue.lease("w2", ["noop"])[0]
    assert second.lease_token != first.lease_token and second.attempts == 2
    # the first worker comes back: every write with its stale token is refused
    assert queue.complete(lease_of(first), {"from": "w1"}) is False
    assert queue.fail(lease_of(first), "late", attempt=1) is None
    assert queue.extend([lease_of(first)]) == {}
    assert queue.release([lease_of(first)]) == set()
    assert queue.complete(lease_of(second), {"from": "w2"}) is True
    done = queue.get(job_id)
    assert done.status == JobStatus.COMPLETED and done.result == {"from": "w2"} and done.crashes == 1


def test_failure_retries_with_growing_backoff_then_fails(queue, conn):
    job_id = queue.enqueue(NewJob("noop", max_attempts=3))
    delays = []
    for attempt in (1, 2):
        conn.execute("UPDATE processing_jobs SET run_after = NOW() WHERE id = %s", (job_id,))
        job = queue.lease("w", ["noop"])[0]
        assert job.attempts == attempt
        before = datetime.now(UTC)
        assert queue.fail(lease_of(job), f"boom {attempt}", attempt=attempt) == "pending"
        delays.append((queue.get(job_id).run_after - before).total_seconds())
    assert 0.4 <= delays[0] <= 1.1 and 0.9 <= delays[1] <= 2.1
    conn.execute("UPDATE processing_jobs SET run_after = NOW() WHERE id = %s", (job_id,))
    job = queue.lease("w", ["noop"])[0]
    assert queue.fail(lease_of(job), "boom 3", attempt=3) == "failed"
    failed = queue.get(job_id)
    assert failed.status == JobStatus.FAILED and failed.error_message == "boom 3" and failed.errors == 3


def test_non_retryable_failure_fails_at_once(queue):
    job_id = queue.enqueue(NewJob("noop", max_attempts=5))
    job = queue.lease("w", ["noop"])[0]
    assert queue.fail(lease_of(job), "invalid input: seconds", attempt=1, retry=False) == "failed"
    assert queue.get(job_id).attempts == 1


def test_cancel_pending_and_running(queue):
    pending, running = queue.enqueue_many([NewJob("noop", priority=9), NewJob("noop", priority=0)])
    job = queue.lease("w", ["noop"])[0]
    assert job.id == running
    assert queue.cancel(pending) == "cancelled"
    assert queue.get(pending).status == JobStatus.CANCELLED
    assert queue.cancel(running) == "processing"
    assert queue.extend([lease_of(job)]) == {running: True}
    assert queue.finish_cancelled(lease_of(job))
    assert queue.get(running).status == JobStatus.CANCELLED
    with pytest.raises(InvalidJob, match="already cancelled"):
        queue.cancel(running)


def test_release_does_not_spend_an_attempt(queue):
    job_id = queue.enqueue(NewJob("noop", max_attempts=1))
    job = queue.lease("w", ["noop"])[0]
    assert queue.release([lease_of(job)]) == {job_id}
    again = queue.lease("w", ["noop"])[0]
    assert again.attempts == 1 and again.status == JobStatus.PROCESSING


def expire_leases(conn):
    conn.execute(
        "UPDATE processing_jobs SET lease_expires_at = NOW() - INTERVAL '1 second' WHERE status = 'processing'"
    )


def test_reap_fails_a_job_whose_attempts_are_spent(queue, conn):
    job_id = queue.enqueue(NewJob("noop", max_attempts=1))
    queue.lease("w", ["noop"])
    expire_leases(conn)
    assert queue.reap() == [{"id": job_id, "status": "failed", "started": True, "leased_by": "w"}]
    job = queue.get(job_id)
    # the message is filled in (it once read "stopped heartbeating (attempt %s of %s)" literally)
    assert (
        job.error_message == "lease expired: worker w stopped heartbeating while running it (attempt 1 of 1)"
    )
    assert job.crashes == 1 and job.unstarted_reaps == 0


def test_a_prefetched_job_never_started_goes_back_without_spending_an_attempt(queue, conn):
    ran, held = queue.enqueue_many([NewJob("noop", max_attempts=1), NewJob("noop", max_attempts=1)])
    leased = {j.id: j for j in queue.lease("w", ["noop"], limit=2, start=False)}
    assert {j.attempts for j in leased.values()} == {1}
    # the heartbeat reports that the worker started the first one; then the worker dies
    queue.extend([lease_of(j) for j in leased.values()], started={ran})
    expire_leases(conn)
    reaped = {r["id"]: r for r in queue.reap()}
    assert reaped[ran]["status"] == "failed" and reaped[ran]["started"] is True
    assert reaped[held]["status"] == "pending" and reaped[held]["started"] is False
    job = queue.get(held)
    assert job.attempts == 0 and job.crashes == 0 and job.unstarted_reaps == 1 and job.error_message is None


def test_mark_started_spends_the_attempt_of_a_prefetched_job_if_its_worker_dies(queue, conn):
    job_id = queue.enqueue(NewJob("noop", max_attempts=1))
    job = queue.lease("w", ["noop"], limit=5, start=False)[0]
    assert job.run_started is False
    assert queue.mark_started(lease_of(job)) is True
    expire_leases(conn)
    assert [r["status"] for r in queue.reap()] == ["failed"]
    assert queue.mark_started(lease_of(job)) is False  # the lease is gone: nothing is written
    assert queue.get(job_id).status == JobStatus.FAILED


def test_an_error_text_postgres_cannot_store_is_made_storable(queue):
    job_id = queue.enqueue(NewJob("noop", max_attempts=1))
    job = queue.lease("w", ["noop"])[0]
    assert queue.fail(lease_of(job), "RuntimeError: caf\udce9 \x00end", attempt=1) == "failed"
    assert queue.get(job_id).error_message == "RuntimeError: caf\\udce9 end"


def test_retry_and_priority_changes(queue):
    job_id = queue.enqueue(NewJob("noop", max_attempts=1))
    with pytest.raises(InvalidJob, match="only failed or cancelled"):
        queue.retry(job_id)
    queue.set_priority(job_id, 0)
    job = queue.lease("w", ["noop"])[0]
    assert job.priority == 0
    queue.fail(lease_of(job), "x", attempt=1)
    queue.retry(job_id)
    assert queue.get(job_id).status == JobStatus.PENDING and queue.get(job_id).attempts == 0


def test_plain_sql_insert_with_only_type_and_metadata(queue, conn):
    conn.execute("""INSERT INTO processing_jobs (job_type, metadata) VALUES ('noop', '{"seconds": 0}')""")
    job = queue.lease("w", ["noop"])[0]
    assert job.priority == 5 and job.max_attempts == 3 and job.metadata == {"seconds": 0}


@pytest.mark.parametrize(
    "job, message",
    [
        (NewJob("noop", priority=-1), "priority: must be between 0"),
        (NewJob("noop", max_attempts=0), "max_attempts: must be between 1 and 1000"),
        (NewJob("noop", {"text": "a\x00b"}), "may not contain NUL characters"),
        (NewJob("noop", {"loss": float("nan")}), "metadata: cannot be stored as JSON"),
        (NewJob("", {}), "job_type: a non-empty job type name is required"),
        (NewJob("noop", ["not", "an", "object"]), "metadata: must be a JSON object"),  # type: ignore[arg-type]
    ],
)
def test_bad_jobs_are_refused_and_nothing_is_written(queue, job, message):
    with pytest.raises(InvalidJob, match=message):
        queue.enqueue_many([NewJob("noop"), job])
    assert queue.list() == []


def test_database_checks_refuse_bad_rows_from_plain_sql(conn):
    import psycopg

    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO processing_jobs (job_type, priority) VALUES ('noop', -1)")


def test_unknown_ids(queue):
    with pytest.raises(JobNotFound, match="not a job id"):
        queue.get("nope")
    with pytest.raises(JobNotFound, match="no job with id"):
        queue.get(uuid.uuid4())


def _register(queue, worker_id, types, busy=False):
    queue.register_worker(worker_id, host="h", pid=1, job_types=types, device={"kind": "cpu"}, concurrency=1)
    if busy:
        queue.worker_heartbeat(worker_id, [uuid.uuid4()])


def test_only_as_many_long_jobs_yield_as_urgent_jobs_wait(queue, conn):
    queue.enqueue_many([NewJob("train", priority=8), NewJob("train", priority=8)])
    first = queue.lease("w1", ["train"])[0]
    time.sleep(0.01)
    second = queue.lease("w2", ["train"])[0]
    _register(queue, "w1", ["train", "paint"], busy=True)
    _register(queue, "w2", ["train", "paint"], busy=True)

    def yields():
        return [queue.should_yield(j, ["paint"], wait_s=0, alive_s=60) for j in (first, second)]

    assert yields() == [False, False]  # nothing waits
    queue.enqueue(NewJob("paint", priority=5))
    time.sleep(0.01)
    assert yields() == [False, True]  # one waits: only the latest started training yields
    queue.enqueue(NewJob("paint", priority=9))
    assert yields() == [False, True]  # worse priority than training: does not count
    queue.enqueue(NewJob("paint", priority=1))
    time.sleep(0.01)
    assert yields() == [True, True]  # two wait: both yield
    _register(queue, "w3", ["paint"])  # an idle worker will take one of them
    assert yields() == [False, True]
    assert queue.should_yield(first, ["paint"], wait_s=3600, alive_s=60) is False  # not waited long enough
