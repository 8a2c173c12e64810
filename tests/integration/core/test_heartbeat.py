"""The heartbeat against a real Postgres: it marks started jobs and warns only of leases really lost."""

import logging

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.heartbeat import Heartbeat


def lease_of(job):
    return Lease(job.id, job.lease_token)


def context(job, settings):
    return JobContext(job=job, log=logging.getLogger("test"), connect=None, settings=settings)


def test_the_heartbeat_warns_only_of_leases_really_lost(db, settings, conn, caplog):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop") for _ in range(3)])
    finished, taken, running = queue.lease("w", ["noop"], limit=3, start=False)
    held = {lease_of(j): context(j, settings) for j in (finished, taken, running)}
    # `finished`: this worker's slot has just written its completion and not yet forgotten it.
    held[lease_of(finished)].finishing = True
    assert queue.complete(lease_of(finished), {"ok": True})
    # `taken`: its lease expired and another worker has it now.
    conn.execute(
        "UPDATE processing_jobs SET lease_expires_at = NOW() - INTERVAL '1 s' WHERE id = %s", (taken.id,)
    )
    queue.reap()
    assert queue.lease("other", ["noop"])[0].id == taken.id
    # `running`: its handler has started.
    held[lease_of(running)].started = True

    heartbeat = Heartbeat(
        db, settings, "w", held=lambda: dict(held), counters=lambda: (0, 0), status=lambda: "running"
    )
    with caplog.at_level(logging.WARNING, logger="enchant_worker.worker.watchdog"):
        heartbeat.tick(queue)

    assert [r.getMessage() for r in caplog.records] == [f"lost the lease of job {taken.id}; stopping it"]
    assert held[lease_of(taken)].cancel_reason == "lease_lost"
    assert held[lease_of(finished)].cancel_reason is None and held[lease_of(running)].cancel_reason is None
    # The started job is recorded as running: if this worker dies now, it spends its attempt.
    assert queue.get(running.id).run_started is True
