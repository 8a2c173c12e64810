"""The watchdog against a real Postgres: a job past its time limit is failed for retry elsewhere, its
handler told to stop, and whatever that handler writes later is refused."""

import logging
import time

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.worker import watchdog
from enchant_worker.worker.context import JobContext


def test_a_job_past_its_time_limit_is_failed_and_its_handler_stopped(settings, conn):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop", max_attempts=2) for _ in range(2)])
    hung, fine = queue.lease("w", ["noop"], limit=2)
    held = {}
    for job, deadline in ((hung, time.monotonic() - 1), (fine, time.monotonic() + 3600)):
        ctx = JobContext(job=job, log=logging.getLogger("test"), connect=None, settings=settings)
        ctx.timeout_s, ctx.deadline = 5.0, deadline
        held[Lease.of(job)] = ctx
    hung_ctx = held[Lease.of(hung)]

    watchdog.stop_hung(queue, held)

    assert list(held) == [Lease.of(fine)]  # no longer renewed
    assert hung_ctx.timed_out and hung_ctx.cancel_reason == "timeout" and hung_ctx.is_cancelled()
    stored = queue.get(hung.id)
    assert stored.status == "pending" and "timed out: ran past its 5 s limit" in stored.error_message
    assert not queue.complete(Lease.of(hung), {"late": True})  # the hung handler's late result is refused
    assert queue.get(fine.id).status == "processing"
    # A second round does not fail it again.
    watchdog.stop_hung(queue, {Lease.of(hung): hung_ctx})
    assert queue.get(hung.id).attempts == stored.attempts


def test_a_cancel_request_and_a_lost_lease_stop_their_handlers(settings, conn):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop") for _ in range(3)])
    jobs = queue.lease("w", ["noop"], limit=3)
    held = {
        Lease.of(j): JobContext(job=j, log=logging.getLogger("test"), connect=None, settings=settings)
        for j in jobs
    }
    cancelled, lost, running = jobs
    renewed = {cancelled.id: True, running.id: False}  # `lost` is no longer this worker's

    watchdog.stop_cancelled(renewed, held, held)

    assert held[Lease.of(cancelled)].cancel_reason == "cancel_requested"
    assert held[Lease.of(lost)].cancel_reason == "lease_lost"
    assert not held[Lease.of(running)].is_cancelled()
