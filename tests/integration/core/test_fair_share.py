"""Fair share inside a priority level (lease_jobs_fair): groups, weights, caps, and what stays as before."""

import json
import threading
import uuid

import pytest

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.fairness import FairShare


def _user(conn, tier="free", overrides=None):
    return conn.execute(
        "INSERT INTO users (email, subscription_tier, quota_overrides) VALUES (%s, %s, %s::jsonb) RETURNING id",
        (f"{uuid.uuid4().hex}@example.org", tier, json.dumps(overrides or {})),
    ).fetchone()["id"]


@pytest.fixture
def fair(conn):
    return JobQueue(
        conn, lease_s=30, fair_share=FairShare({"free": 1, "pro": 3}, {"free": None, "pro": None})
    )


def _owners(jobs, names):
    return [names[j.user_id] for j in jobs]


def test_a_flood_does_not_hold_back_another_user(fair, conn):
    a, b = _user(conn), _user(conn)
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=a) for i in range(200)])
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=b) for i in range(3)])
    # Nothing runs yet: A's head is older, so A goes first; from then on a free slot goes to the user
    # with fewer jobs running (ties to the older job), and within a user the order stays oldest first.
    first = [fair.lease("w", ["noop"])[0] for _ in range(7)]
    assert _owners(first, {a: "A", b: "B"}) == ["A", "B", "A", "B", "A", "B", "A"]
    assert [j.metadata["n"] for j in first if j.user_id == a] == [0, 1, 2, 3]


def test_one_lease_interleaves_groups_by_running_jobs(fair, conn):
    a, b = _user(conn), _user(conn)
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=a) for i in range(50)])
    held = fair.lease("w", ["noop"], limit=4)  # A now has 4 running
    assert {j.user_id for j in held} == {a}
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=b) for i in range(10)])
    batch = fair.lease("w", ["noop"], limit=6)
    # B (0 running) gets slots until it has as many running as A (4): 4 of B, then they alternate
    assert sum(j.user_id == b for j in batch) == 5 and sum(j.user_id == a for j in batch) == 1


def test_weights_come_from_the_tier_and_the_users_override(fair, conn):
    free, pro = _user(conn, "free"), _user(conn, "pro")
    fair.enqueue_many([NewJob("noop", user_id=u) for u in (free, pro) for _ in range(40)])
    batch = fair.lease("w", ["noop"], limit=20)
    assert sum(j.user_id == pro for j in batch) == 15  # weight 3 against 1
    heavy = _user(conn, "free", {"fair_share_weight": 9})
    fair.enqueue_many([NewJob("noop", user_id=heavy) for _ in range(40)])
    batch = fair.lease("w", ["noop"], limit=10)
    assert sum(j.user_id == heavy for j in batch) >= 9


def test_a_user_at_the_cap_waits_while_others_run(conn):
    queue = JobQueue(conn, lease_s=30, fair_share=FairShare({"free": 1}, {"free": 2}))
    a, b = _user(conn), _user(conn, "free", {"max_running_jobs": 3})
    queue.enqueue_many([NewJob("noop", user_id=a) for _ in range(10)])
    assert len(queue.lease("w", ["noop"], limit=10)) == 2  # the tier's cap
    assert queue.lease("w", ["noop"], limit=10) == []
    queue.enqueue_many([NewJob("noop", user_id=b) for _ in range(10)])
    assert [j.user_id for j in queue.lease("w", ["noop"], limit=10)] == [b] * 3  # the user's own cap
    # a finished job frees a place under the cap
    done = queue.list(status="processing")[0]
    queue.complete(Lease(done.id, done.lease_token))
    again = queue.lease("w", ["noop"], limit=10)
    assert [j.user_id for j in again] == [done.user_id]


def test_jobs_with_no_user_are_one_group(fair, conn):
    a = _user(conn)
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=a) for i in range(20)])
    for i in range(3):  # the web app's plain SQL insert
        conn.execute(
            "INSERT INTO processing_jobs (job_type, metadata) VALUES ('noop', %s::jsonb)",
            (f'{{"plain": {i}}}',),
        )
    batch = fair.lease("w", ["noop"], limit=6)
    assert [j.metadata.get("plain") for j in batch if j.user_id is None] == [0, 1, 2]
    assert sum(j.user_id == a for j in batch) == 3


def test_priority_still_comes_first_across_users(fair, conn):
    a, b = _user(conn), _user(conn)
    fair.enqueue_many([NewJob("noop", {"n": i}, user_id=a, priority=5) for i in range(10)])
    urgent = fair.enqueue_many([NewJob("noop", user_id=a, priority=1), NewJob("noop", user_id=b, priority=2)])
    fair.enqueue_many([NewJob("noop", user_id=b, priority=5) for _ in range(10)])
    batch = fair.lease("w", ["noop"], limit=3)
    assert [j.id for j in batch[:2]] == urgent and batch[2].priority == 5


def test_types_and_deferred_jobs_are_respected(fair, conn):
    a, b = _user(conn), _user(conn)
    fair.enqueue_many([NewJob("other", user_id=a) for _ in range(5)] + [NewJob("noop", user_id=b)])
    assert [j.job_type for j in fair.lease("w", ["noop"], limit=10)] == ["noop"]


def test_fairness_off_is_plain_priority_then_age(conn):
    fifo = JobQueue(conn, lease_s=30, fair_share=None)
    a, b = _user(conn), _user(conn)
    ids = fifo.enqueue_many([NewJob("noop", user_id=a) for _ in range(5)])
    fifo.enqueue_many([NewJob("noop", user_id=b)])
    assert [j.id for j in fifo.lease("w", ["noop"], limit=5)] == ids


def test_concurrent_fair_leases_never_take_a_job_twice(db, conn):
    users = [_user(conn) for _ in range(4)]
    JobQueue(conn).enqueue_many([NewJob("noop", user_id=u) for u in users for _ in range(150)])
    taken: list[uuid.UUID] = []
    lock = threading.Lock()

    def drain():
        queue = JobQueue(db.open(), lease_s=30)
        while batch := queue.lease(f"w-{threading.get_ident()}", ["noop"], limit=7):
            with lock:
                taken.extend(j.id for j in batch)
            queue.complete_many([(Lease(j.id, j.lease_token), None) for j in batch])

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == len(set(taken)) == 600


def test_a_light_user_whose_share_is_under_one_slot_still_runs_after_the_bounded_wait(conn):
    # Enterprise weighs 10, free 1: with 4 slots the free user's share (4/11) is under one slot, so
    # (running + k) / weight alone would never pick it while the enterprise user has work.
    queue = JobQueue(conn, lease_s=30, fair_share=FairShare({"free": 1, "enterprise": 10}, max_wait_s=5))
    big, small = _user(conn, "enterprise"), _user(conn, "free")
    queue.enqueue_many([NewJob("noop", user_id=big) for _ in range(40)])
    queue.enqueue_many([NewJob("noop", user_id=small) for _ in range(3)])
    for _ in range(2):
        batch = queue.lease("w", ["noop"], limit=4)
        assert {j.user_id for j in batch} == {big}
        queue.complete_many([(Lease(j.id, j.lease_token), None) for j in batch])
    # the small user's jobs have now waited past max_wait_s (backdated rather than slept)
    conn.execute(
        "UPDATE processing_jobs SET created_at = created_at - INTERVAL '6 seconds', run_after = run_after - INTERVAL '6 seconds' WHERE user_id = %s",
        (small,),
    )
    batch = queue.lease("w", ["noop"], limit=4)
    assert batch[0].user_id == small and sum(j.user_id == small for j in batch) == 1


def test_overrides_written_wrong_by_plain_sql_do_not_break_the_lease(fair, conn):
    odd = _user(conn, "free")
    conn.execute(
        "UPDATE users SET quota_overrides = %s::jsonb WHERE id = %s",
        ('{"fair_share_weight": "heavy", "max_running_jobs": 1e12}', odd),
    )
    zero = _user(conn, "free")
    conn.execute(
        "UPDATE users SET quota_overrides = '{\"max_running_jobs\": 0}'::jsonb WHERE id = %s", (zero,)
    )
    fair.enqueue_many([NewJob("noop", user_id=u) for u in (odd, zero) for _ in range(3)])
    leased = fair.lease("w", ["noop"], limit=10)
    # the text weight is ignored (the tier's 1), the huge cap is no cap, a cap of 0 counts as 1
    assert sum(j.user_id == odd for j in leased) == 3 and sum(j.user_id == zero for j in leased) == 1
