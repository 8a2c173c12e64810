"""Warm-model affinity in the fair lease: warm jobs first, a bounded extra wait, and fair share, priority
and SKIP LOCKED as before. The job keys are computed by the database (migration 0092)."""

import subprocess
import sys
import threading
import uuid

import pytest
from pydantic import ValidationError

from enchant_worker.config import Settings
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from enchant_worker.queue.affinity import Affinity, Warm
from enchant_worker.queue.fairness import FairShare

X = Warm.of(["x"])  # a worker with model x resident and no LoRA loaded


def _user(conn):
    return conn.execute(
        "INSERT INTO users (email) VALUES (%s) RETURNING id", (f"{uuid.uuid4().hex}@example.org",)
    ).fetchone()["id"]


def _image(model=None, loras=(), user=None, priority=5, **extra):
    metadata = {"prompt": "a lighthouse", **({"model": model} if model else {}), **extra}
    if loras:
        metadata["loras"] = loras if isinstance(loras, str) else list(loras)
    return NewJob("generate_image", metadata, user_id=user, priority=priority)


def _backdate(conn, job_id, seconds):
    conn.execute(
        "UPDATE processing_jobs SET created_at = NOW() - make_interval(secs => %s), "
        "run_after = NOW() - make_interval(secs => %s) WHERE id = %s",
        (seconds, seconds, job_id),
    )


@pytest.fixture
def queue(conn):
    return JobQueue(conn, lease_s=30, affinity=Affinity(max_wait_s=60))


def test_the_database_derives_each_jobs_model_and_lora_keys(queue, conn):
    ids = queue.enqueue_many(
        [
            _image("x", ["ink:0.7", {"name": "water", "strength": 1}, {"lora_model_id": "L1"}, "ink"]),
            _image(loras=[{"id": "L2"}]),
            _image(loras="not a list"),  # refused by its validation later, never at insert
            NewJob("noop"),
        ]
    )
    rows = {
        r["id"]: r
        for r in conn.execute("SELECT id, affinity_model, affinity_loras FROM processing_jobs").fetchall()
    }
    assert (rows[ids[0]]["affinity_model"], rows[ids[0]]["affinity_loras"]) == (
        "x",
        ["x|L1", "x|ink", "x|water"],
    )
    assert (rows[ids[1]]["affinity_model"], rows[ids[1]]["affinity_loras"]) == ("", ["|L2"])
    assert (rows[ids[2]]["affinity_model"], rows[ids[2]]["affinity_loras"]) == ("", [])
    assert (rows[ids[3]]["affinity_model"], rows[ids[3]]["affinity_loras"]) == (None, None)
    # the web app's plain SQL insert gets them too, and the leased Job carries them
    conn.execute("""INSERT INTO processing_jobs (job_type, metadata)
                    VALUES ('generate_image', '{"model": "y", "loras": ["oil"]}')""")
    job = next(j for j in queue.lease("w", ["generate_image"], limit=10) if j.affinity_model == "y")
    assert job.affinity_loras == ["y|oil"]


def test_a_worker_with_the_model_resident_takes_its_job_over_an_older_one(queue):
    older, warm = queue.enqueue_many([_image("y"), _image("x")])
    assert [j.id for j in queue.lease("w", ["generate_image"], warm=X)] == [warm]
    assert [j.id for j in queue.lease("w", ["generate_image"], warm=X)] == [older]  # then the rest


def test_without_anything_resident_the_order_is_the_queues(queue):
    ids = queue.enqueue_many([_image("y"), _image("x"), _image("y")])
    assert [j.id for j in queue.lease("w", ["generate_image"], limit=3)] == ids
    assert queue.affinity.params(Warm(), 3)["prefer"] is False


def test_loaded_loras_come_before_the_model_alone_and_the_model_before_nothing(queue):
    cold, model_only, all_warm = queue.enqueue_many(
        [_image("y"), _image("x", ["water"]), _image("x", ["ink"])]
    )
    warm = Warm.of(["x"], ["x|ink"])
    taken = [queue.lease("w", ["generate_image"], warm=warm)[0].id for _ in range(3)]
    assert taken == [all_warm, model_only, cold]


def test_jobs_that_need_no_model_count_as_warm(queue):
    cold, other = queue.enqueue_many([_image("y"), NewJob("noop")])
    assert [j.id for j in queue.lease("w", ["generate_image", "noop"], warm=X)] == [other]


def test_a_job_older_than_the_limit_is_taken_in_queue_order(queue, conn):
    old_y, young_y = queue.enqueue_many([_image("y"), _image("y")])
    warm = queue.enqueue_many([_image("x") for _ in range(3)])
    _backdate(conn, old_y, 61)  # waited past max_wait_s (backdated rather than slept)
    _backdate(conn, young_y, 30)
    for job_id in warm:
        _backdate(conn, job_id, 10)
    taken = [queue.lease("w", ["generate_image"], warm=X)[0].id for _ in range(5)]
    assert taken == [old_y, *warm, young_y]


def test_zero_wait_turns_the_preference_off(conn):
    queue = JobQueue(conn, lease_s=30, affinity=Affinity(max_wait_s=0))
    ids = queue.enqueue_many([_image("y"), _image("x")])
    assert [j.id for j in queue.lease("w", ["generate_image"], warm=X)] == [ids[0]]


def test_priority_still_comes_first(queue):
    urgent_cold, warm = queue.enqueue_many([_image("y", priority=1), _image("x", priority=5)])
    assert [j.id for j in queue.lease("w", ["generate_image"], warm=X)] == [urgent_cold]


def test_fair_share_still_decides_between_users(conn):
    queue = JobQueue(conn, lease_s=30, fair_share=FairShare(), affinity=Affinity(max_wait_s=600))
    a, b = _user(conn), _user(conn)
    queue.enqueue_many([_image("x", user=a) for _ in range(20)])  # all warm
    queue.enqueue_many([_image("y", user=b) for _ in range(5)])  # all cold
    owners = ["A" if queue.lease("w", ["generate_image"], warm=X)[0].user_id == a else "B" for _ in range(6)]
    # affinity only breaks the tie when both have the same running count; B still gets every other slot
    assert owners == ["A", "B", "A", "B", "A", "B"]
    batch = queue.lease("w", ["generate_image"], limit=4, warm=X)
    assert sum(j.user_id == b for j in batch) == 2


def test_within_a_user_warm_jobs_go_first_and_the_cap_holds(conn):
    queue = JobQueue(
        conn, lease_s=30, fair_share=FairShare({"free": 1}, {"free": 2}), affinity=Affinity(max_wait_s=600)
    )
    a = _user(conn)
    cold = queue.enqueue_many([_image("y", user=a) for _ in range(3)])
    warm = queue.enqueue_many([_image("x", user=a) for _ in range(3)])
    batch = queue.lease("w", ["generate_image"], limit=10, warm=X)
    assert [j.id for j in batch] == warm[:2]  # the tier's cap of 2, filled with warm jobs
    assert queue.lease("w", ["generate_image"], limit=10, warm=X) == []
    assert cold


def test_concurrent_preferring_leases_never_take_a_job_twice(db, conn):
    users = [_user(conn) for _ in range(3)]
    JobQueue(conn).enqueue_many([_image(m, user=u) for u in users for m in ("x", "y") * 40])
    taken: list[uuid.UUID] = []
    lock = threading.Lock()

    def drain(worker: str, warm: Warm) -> None:
        with db.open() as own:
            q = JobQueue(own, lease_s=30, affinity=Affinity(max_wait_s=600, window=8))
            while jobs := q.lease(worker, ["generate_image"], limit=3, warm=warm):
                with lock:
                    taken.extend(j.id for j in jobs)

    threads = [threading.Thread(target=drain, args=(f"w{i}", Warm.of([("x", "y")[i % 2]]))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(taken) == 240 and len(set(taken)) == 240


def test_the_worker_row_records_what_is_resident(queue, conn):
    queue.register_worker("gpu-0", host="h", pid=1, job_types=["generate_image"], device={}, concurrency=1)
    queue.worker_heartbeat("gpu-0", [], resident=Warm.of(["x"], ["x|ink"]))
    row = conn.execute("SELECT resident FROM workers WHERE id = 'gpu-0'").fetchone()
    assert row["resident"] == {"models": ["x"], "loras": ["x|ink"]}


def test_a_negative_wait_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="affinity max_wait_s must be 0 \\(off\\) or more seconds, not -1"):
        Affinity(max_wait_s=-1)
    with pytest.raises(ValueError, match="window must be at least 1"):
        Affinity(window=0)
    with pytest.raises(ValidationError, match="affinity_max_wait_s"):
        Settings(affinity_max_wait_s=-5)
    env = {"ENCHANT_AFFINITY_MAX_WAIT_S": "-5", "ENCHANT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "enchant_worker.cli", "jobs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert (
        "invalid configuration: affinity_max_wait_s: Input should be greater than or equal to 0" in out.stderr
    )
