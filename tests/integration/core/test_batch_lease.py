"""Cross-job batching in the queue: the companions a GPU worker leases with a generate_image job
(lease_batch_companions), and what a crash while holding a batch costs each job."""

import json
import uuid

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.fairness import FairShare

SHARED = {"model": "tiny-sd", "steps": 2, "size": "64x64", "sampler": "Euler", "cfg": 5.0}


def _user(conn, tier="free", overrides=None):
    return conn.execute(
        "INSERT INTO users (email, subscription_tier, quota_overrides) VALUES (%s, %s, %s::jsonb) RETURNING id",
        (f"{uuid.uuid4().hex}@example.org", tier, json.dumps(overrides or {})),
    ).fetchone()["id"]


def _job(prompt, user=None, priority=5, **settings):
    return NewJob(
        "generate_image",
        {"prompt": prompt, "seed": len(prompt), **SHARED, **settings},
        user_id=user,
        priority=priority,
    )


@pytest.fixture
def queue(conn):
    return JobQueue(conn, lease_s=30, fair_share=FairShare({"free": 1}, {"free": 3}))


def _head(queue) -> tuple[Lease, object]:
    (job,) = queue.lease("gpu-1", ["generate_image"], start=True)
    return Lease(job.id, job.lease_token), job


def test_companions_share_the_batch_key_and_nothing_else(queue, conn):
    ids = queue.enqueue_many(
        [
            _job("a lighthouse"),
            _job("a fox", count=2, negative_prompt="blurry"),  # prompts, seeds, counts may differ
            _job("a ship", steps=3),  # another step count: not in this batch
            _job("a tower", loras=["ink:0.8"]),  # another LoRA set
            _job("a cat", size="128x128"),  # another size
            NewJob("noop", {"prompt": "x", **SHARED}),  # another job type
            _job("a moon"),
        ]
    )
    head, _ = _head(queue)
    companions = queue.lease_companions("gpu-1", head, limit=7)
    assert head.job_id == ids[0]
    assert [j.id for j in companions] == [ids[1], ids[6]]
    assert all(j.status == JobStatus.PROCESSING and j.leased_by == "gpu-1" for j in companions)
    # held like a prefetch: not started, so a crash before the call gives them back unspent
    started = conn.execute(
        "SELECT run_started FROM processing_jobs WHERE id = ANY(%s)", ([j.id for j in companions],)
    ).fetchall()
    assert [r["run_started"] for r in started] == [False, False]


def test_companions_go_round_robin_across_users_within_a_priority(queue, conn):
    a, b, c = _user(conn, "pro"), _user(conn, "pro"), _user(conn, "pro")
    for job in (
        [_job(f"a{i}", a) for i in range(6)]
        + [_job(f"b{i}", b) for i in range(2)]
        + [_job(f"c{i}", c) for i in range(2)]
        + [_job("urgent", c, priority=1)]
    ):
        queue.enqueue(job)  # one by one: each its own created_at
    head, job = _head(queue)
    assert job.metadata["prompt"] == "urgent"
    owners = {a: "A", b: "B", c: "C"}
    companions = queue.lease_companions("gpu-1", head, limit=5)
    # priority first (none left at 1), then each user's first job before anyone's second, then age
    assert sorted(owners[j.user_id] + j.metadata["prompt"][1:] for j in companions) == [
        "A0",
        "A1",
        "B0",
        "B1",
        "C0",
    ]


def test_a_user_at_their_running_cap_gets_no_companions(queue, conn):
    a, b = _user(conn, "free"), _user(conn, "free")  # free: at most 3 running (fixture)
    queue.enqueue_many([_job(f"a{i}", a) for i in range(6)] + [_job(f"b{i}", b) for i in range(6)])
    head, job = _head(queue)
    # one statement gave all twelve the same age: either user may come first; the head's is the capped one
    capped, other = (a, b) if job.user_id == a else (b, a)
    companions = queue.lease_companions("gpu-1", head, limit=6)
    assert sum(j.user_id == capped for j in companions) == 2  # the head and two more: three running
    assert sum(j.user_id == other for j in companions) == 3
    # fair share off: no caps
    plain = JobQueue(conn, lease_s=30, fair_share=None)
    more = plain.lease_companions("gpu-1", head, limit=10)
    assert sum(j.user_id == capped for j in more) == 3


def test_two_workers_never_share_a_companion(queue, conn, db):
    queue.enqueue_many([_job(f"p{i}") for i in range(10)])
    head_1, _ = _head(queue)
    with db.connection() as other_conn:
        other = JobQueue(other_conn, lease_s=30)
        other_conn.execute("BEGIN")
        (job_2,) = other.lease("gpu-2", ["generate_image"], start=True)
        taken_2 = other.lease_companions("gpu-2", Lease(job_2.id, job_2.lease_token), limit=3)
        # gpu-2's transaction still holds its rows: gpu-1 skips them instead of waiting
        taken_1 = queue.lease_companions("gpu-1", head_1, limit=3)
        other_conn.execute("COMMIT")
    ids_1, ids_2 = {j.id for j in taken_1} | {head_1.job_id}, {j.id for j in taken_2} | {job_2.id}
    assert len(ids_1) == 4 and len(ids_2) == 4 and not ids_1 & ids_2


def test_no_companions_for_a_lost_lease_or_another_job_type(queue, conn):
    queue.enqueue_many([_job("a"), _job("b"), NewJob("noop", {}), _job("c")])
    head, _ = _head(queue)
    assert queue.lease_companions("gpu-1", Lease(head.job_id, uuid.uuid4()), limit=3) == []
    (noop,) = queue.lease("w", ["noop"])
    assert queue.lease_companions("w", Lease(noop.id, noop.lease_token), limit=3) == []
    assert queue.lease_companions("gpu-1", head, limit=0) == []
    assert len(queue.lease_companions("gpu-1", head, limit=3)) == 2


def test_metadata_the_key_cannot_read_is_still_enqueued_and_never_batched(queue, conn):
    # The web app's plain SQL may write anything: the index must not make an insert fail.
    odd = [
        conn.execute(
            "INSERT INTO processing_jobs (job_type, metadata) VALUES ('generate_image', %s::jsonb) "
            "RETURNING id",
            (value,),
        ).fetchone()["id"]
        for value in ("[1, 2]", '"text"', "null")
    ]
    queue.enqueue_many([_job("a"), _job("b")])
    head, job = _head(queue)  # the oldest: an odd one, which the worker will fail with a message
    assert job.id == odd[0]
    assert queue.lease_companions("gpu-1", head, limit=5) == []


def test_a_crash_before_the_batched_call_costs_the_companions_no_attempt(queue, conn):
    queue.enqueue_many([_job(f"p{i}") for i in range(4)])
    head, _ = _head(queue)
    companions = queue.lease_companions("gpu-1", head, limit=3)
    # the worker dies holding the batch: no heartbeat marked the companions started
    conn.execute("UPDATE processing_jobs SET lease_expires_at = NOW() - interval '1 second'")
    reaped = {r["id"]: r for r in queue.reap()}
    assert len(reaped) == 4 and all(r["status"] == "pending" for r in reaped.values())
    rows = {
        r["id"]: r for r in conn.execute("SELECT id, attempts, crashes, unstarted_reaps FROM processing_jobs")
    }
    assert (rows[head.job_id]["attempts"], rows[head.job_id]["crashes"]) == (1, 1)  # leased to run: spent
    for job in companions:
        assert (rows[job.id]["attempts"], rows[job.id]["unstarted_reaps"]) == (0, 1)


def test_a_crash_during_the_batched_call_spends_one_attempt_each(queue, conn):
    queue.enqueue_many([_job(f"p{i}") for i in range(3)])
    head, _ = _head(queue)
    companions = queue.lease_companions("gpu-1", head, limit=2)
    leases = [head] + [Lease(j.id, j.lease_token) for j in companions]
    queue.extend(leases, started={le.job_id for le in leases})  # the heartbeat: all three are in the call
    conn.execute("UPDATE processing_jobs SET lease_expires_at = NOW() - interval '1 second'")
    assert len(queue.reap()) == 3
    rows = conn.execute("SELECT status, attempts, crashes FROM processing_jobs").fetchall()
    assert [(r["status"], r["attempts"], r["crashes"]) for r in rows] == [("pending", 1, 1)] * 3
    # each is back once: the next lease takes each of them once
    head, _ = _head(queue)
    again = queue.lease_companions("gpu-2", head, limit=5)
    assert len({head.job_id, *(j.id for j in again)}) == 3
