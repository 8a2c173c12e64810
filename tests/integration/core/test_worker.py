"""The worker loop in-process against a real Postgres."""

import time

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.queue import JobQueue
from tests.support.counting_handlers import SETUP_SQL
from tests.support.waiting import wait_for
from tests.support.workers import WorkerThreads


@pytest.fixture
def start_worker(db, settings, conn):
    """Starts workers serving the counting test handlers; all are stopped at teardown."""
    conn.execute(SETUP_SQL)
    workers = WorkerThreads(db, settings)
    yield lambda **kw: workers.start(module="tests.support.counting_handlers", **kw)
    workers.stop_all()


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


def status_of(queue, job_id):
    return queue.get(job_id).status


def test_plain_sql_insert_wakes_an_idle_worker_through_notify(start_worker, conn, queue):
    # Polling every 60 s: only NOTIFY can start the job within a second.
    worker, _ = start_worker(types=["noop"], poll_interval_s=60)
    wait_for(lambda: conn.execute("SELECT 1 FROM workers WHERE id = %s", (worker.worker_id,)).fetchone())
    time.sleep(0.3)  # let the loop settle into its 60 s wait
    t0 = time.monotonic()
    job_id = conn.execute(
        "INSERT INTO processing_jobs (job_type, metadata) VALUES ('noop', '{}') RETURNING id"
    ).fetchone()["id"]
    wait_for(lambda: status_of(queue, job_id) == JobStatus.COMPLETED, timeout=20)
    assert time.monotonic() - t0 < 20  # NOTIFY: polling would take 60 s (a margin for a busy machine)


def test_handler_errors_are_retried_then_failed_and_the_worker_goes_on(start_worker, queue):
    bad = queue.enqueue(NewJob("noop", {"fail": "disk on fire"}, max_attempts=2))
    good = queue.enqueue(NewJob("noop"))
    invalid = queue.enqueue(NewJob("noop", {"seconds": "soon"}))
    start_worker(types=["noop"])
    wait_for(lambda: status_of(queue, bad) == JobStatus.FAILED)
    job = queue.get(bad)
    assert job.attempts == 2 and job.errors == 2 and job.error_message == "RuntimeError: disk on fire"
    assert status_of(queue, good) == JobStatus.COMPLETED
    wait_for(lambda: status_of(queue, invalid) == JobStatus.FAILED)
    failed = queue.get(invalid)
    assert failed.attempts == 1 and "invalid input: seconds: must be a number" in failed.error_message


def test_a_job_type_nobody_handles_stays_pending_and_visible(start_worker, queue):
    orphan = queue.enqueue(NewJob("paint_mural"))
    done = queue.enqueue(NewJob("noop"))
    start_worker(types=["noop"])
    wait_for(lambda: status_of(queue, done) == JobStatus.COMPLETED)
    assert status_of(queue, orphan) == JobStatus.PENDING
    assert queue.list(status="pending")[0].id == orphan


def test_cancel_a_running_job_stops_it_within_a_moment(start_worker, queue):
    job_id = queue.enqueue(NewJob("noop", {"seconds": 60}))
    start_worker(types=["noop"], heartbeat_seconds=40)
    wait_for(lambda: status_of(queue, job_id) == JobStatus.PROCESSING)
    t0 = time.monotonic()
    assert queue.cancel(job_id) == "processing"
    wait_for(lambda: status_of(queue, job_id) == JobStatus.CANCELLED, timeout=20)
    assert time.monotonic() - t0 < 20  # NOTIFY, not the 40 s heartbeat (a margin for a busy machine)


def test_progress_is_visible_while_running(start_worker, queue):
    job_id = queue.enqueue(NewJob("noop", {"seconds": 3}))
    start_worker(types=["noop"])
    pct = wait_for(lambda: (p := queue.get(job_id).progress_percent) and 0 < p < 100 and p)
    assert 0 < pct < 100


def test_a_hung_handler_is_failed_and_its_late_write_refused(start_worker, queue, conn):
    job_id = queue.enqueue(NewJob("hang", {"seconds": 3}, max_attempts=2))
    start_worker(types=["hang"], concurrency=2, retry_base_s=0, retry_max_s=0)
    # the first attempt hangs; the heartbeat fails it; the second slot runs it again under a new token
    wait_for(
        lambda: (j := queue.get(job_id)).status == JobStatus.COMPLETED and j.result == {"attempt": 2}, 10
    )
    assert queue.get(job_id).errors == 1  # the timeout, recorded as an error of attempt 1
    time.sleep(3.0)  # the hung attempt returns now and tries to complete with its stale token: refused
    job = queue.get(job_id)
    assert job.result == {"attempt": 2} and job.attempts == 2


def test_odd_progress_values_never_stop_the_heartbeat(start_worker, queue):
    # NaN and numpy scalars in progress details; the job outlives its 2 s lease only if beats go on
    job_id = queue.enqueue(NewJob("odd", {"seconds": 3.5, "result": 1}))
    start_worker(types=["odd"], lease_seconds=2, heartbeat_seconds=0.3)
    wait_for(lambda: queue.get(job_id).status == JobStatus.COMPLETED, 15)
    job = queue.get(job_id)
    assert job.attempts == 1 and job.crashes == 0 and job.progress == {"loss": 0.25}


def test_a_result_json_cannot_hold_fails_clearly_instead_of_sticking(start_worker, queue):
    job_id = queue.enqueue(NewJob("odd", {"result": "nan"}))
    start_worker(types=["odd"])
    wait_for(lambda: queue.get(job_id).status == JobStatus.FAILED, 10)
    assert queue.get(job_id).error_message == (
        "the handler's result cannot be stored: result['value']: nan is not a JSON number"
    )


def test_an_error_message_with_a_nul_character_is_stored(start_worker, queue):
    job_id = queue.enqueue(NewJob("odd", {"error": "bad|byte"}, max_attempts=1))
    start_worker(types=["odd"])
    wait_for(lambda: queue.get(job_id).status == JobStatus.FAILED, 10)
    assert queue.get(job_id).error_message == "RuntimeError: badbyte"


def test_a_cancel_survives_a_hand_back(queue):
    job_id = queue.enqueue(NewJob("noop"))
    job = queue.lease("w", ["noop"])[0]
    queue.cancel(job_id)  # leased but not started: only the flag is set
    from enchant_worker.queue import Lease

    queue.release([Lease(job.id, job.lease_token)])
    assert queue.get(job_id).status == JobStatus.CANCELLED


def test_shutdown_hands_back_a_running_job_without_spending_an_attempt(start_worker, queue):
    job_id = queue.enqueue(NewJob("slow_count", {"seconds": 30}, max_attempts=1))
    worker, thread = start_worker(types=["slow_count"], shutdown_grace_s=0.5)
    wait_for(lambda: status_of(queue, job_id) == JobStatus.PROCESSING)
    worker.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    job = queue.get(job_id)
    assert job.status == JobStatus.PENDING and job.attempts == 0 and job.lease_token is None


def test_shutdown_lets_a_short_job_finish(start_worker, queue):
    job_id = queue.enqueue(NewJob("noop", {"seconds": 1.5}))
    worker, thread = start_worker(types=["noop"], shutdown_grace_s=5)
    wait_for(lambda: queue.get(job_id).progress_percent > 0)  # started, not only leased
    worker.stop()
    thread.join(timeout=15)
    assert status_of(queue, job_id) == JobStatus.COMPLETED


def test_burst_drains_and_exits_with_prefetch(start_worker, queue, conn):
    ids = queue.enqueue_many([NewJob("count") for _ in range(300)])
    _, thread = start_worker(types=["count"], burst=True, concurrency=2)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert {j.status for j in queue.list(limit=1000)} == {JobStatus.COMPLETED}
    runs = conn.execute("SELECT job_id, COUNT(*) AS n FROM executions GROUP BY job_id").fetchall()
    assert len(runs) == len(ids) and all(r["n"] == 1 for r in runs)


def test_worker_row_shows_device_current_job_and_stop(start_worker, queue, conn):
    job_id = queue.enqueue(NewJob("noop", {"seconds": 2}))
    worker, thread = start_worker(types=["noop"])
    row = wait_for(
        lambda: conn.execute(
            "SELECT * FROM workers WHERE id = %s AND %s = ANY(current_job_ids)", (worker.worker_id, job_id)
        ).fetchone()
    )
    assert row["device"]["kind"] == "cpu" and row["job_types"] == ["noop"] and row["pid"] > 0
    worker.stop(now=True)
    thread.join(timeout=15)
    assert (
        conn.execute("SELECT status FROM workers WHERE id = %s", (worker.worker_id,)).fetchone()["status"]
        == "stopped"
    )
