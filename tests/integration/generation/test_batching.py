"""Cross-job batching end to end: compatible generate_image jobs of different users leased together by a
worker and drawn in one pipeline call; each job's faults stay its own."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
import torch

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.queue import JobQueue
from tests.support.waiting import wait_for

from .conftest import STEPS
from .test_generate_image import pixels

BASE = {"steps": STEPS, "size": "64x64"}


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


def _user(conn, tier="pro"):
    return conn.execute(
        "INSERT INTO users (email, subscription_tier) VALUES (%s, %s) RETURNING id",
        (f"{uuid.uuid4().hex}@example.org", tier),
    ).fetchone()["id"]


def _enqueue(queue, metas, users):
    return [
        queue.enqueue(NewJob("generate_image", {**BASE, **m}, user_id=u))
        for m, u in zip(metas, users, strict=True)
    ]


def _images(storage, job) -> list[np.ndarray]:
    return [pixels(storage, image["path"]) for image in job.result["images"]]


def test_compatible_jobs_of_different_users_share_a_call_and_draw_what_they_draw_alone(
    conn, queue, gen_settings, run_worker
):
    users = [_user(conn), _user(conn), _user(conn, "free"), _user(conn)]
    metas = [
        {"prompt": "a lighthouse at night", "seed": 1, "count": 2},
        {"prompt": "a fox in the snow", "seed": 2},
        {"prompt": "a ship", "seed": 3, "negative_prompt": "blurry"},
        {"prompt": "a tower", "seed": 4, "steps": STEPS + 1},
    ]  # another step count: its own call
    batched = _enqueue(queue, metas, users)
    run_worker(generation_batch_size=8)
    alone = _enqueue(queue, metas, users)
    run_worker(generation_batch_size=1)

    storage = gen_settings.storage
    for i, (together, single) in enumerate(zip(batched, alone, strict=True)):
        together, single = queue.get(together), queue.get(single)
        assert together.status == single.status == JobStatus.COMPLETED, (
            together.error_message,
            single.error_message,
        )
        assert together.result["details"]["batched_jobs"] == (1 if i == 3 else 3)
        assert single.result["details"]["batched_jobs"] == 1
        assert together.result["seeds"] == single.result["seeds"]
        for a, b in zip(_images(storage, together), _images(storage, single), strict=True):
            assert np.array_equal(a, b)  # bit for bit (generation.batch_invariance)
    first, second = (_images(storage, queue.get(j))[0] for j in batched[:2])
    assert np.abs(first.astype(np.int16) - second).max() > 50  # the comparison can fail


def test_a_member_refused_late_fails_alone_and_the_others_complete(conn, queue, gen_settings, run_worker):
    user = _user(conn)
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'S') RETURNING id", (user,)
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 1) RETURNING id", (story,)
    ).fetchone()["id"]
    scene = conn.execute(
        "INSERT INTO scenes (chapter_id, summary) VALUES (%s, 'a duel at dawn') RETURNING id", (chapter,)
    ).fetchone()["id"]
    metas = {
        "good 1": ({"prompt": "a lighthouse", "seed": 1}, None),
        "deleted scene": ({"scene_id": str(scene)}, "scene_id: no scene has id"),  # deleted after enqueue
        "seed": ({"prompt": "a fox", "seed": "abc"}, "seed: must be an integer"),
        "branch": ({"prompt": "a ship", "branch_id": str(uuid.uuid4())}, "branch_id:"),
        "good 2": ({"prompt": "a tower", "seed": 2}, None),
    }
    # all five share the batch key (scene, prompt, seed and branch may differ within a batch)
    jobs = {
        k: queue.enqueue(NewJob("generate_image", {**BASE, **m}, user_id=user)) for k, (m, _) in metas.items()
    }
    conn.execute("DELETE FROM scenes WHERE id = %s", (scene,))
    run_worker(generation_batch_size=8)

    for key, (_, expected) in metas.items():
        job = queue.get(jobs[key])
        if expected is None:
            assert job.status == JobStatus.COMPLETED, (key, job.error_message)
            assert job.result["details"]["batched_jobs"] == 2  # the two that passed, in one call
        else:
            assert job.status == JobStatus.FAILED and job.attempts == 1, key
            assert expected in job.error_message and "Traceback" not in job.error_message, (
                key,
                job.error_message,
            )
    rows = conn.execute("SELECT DISTINCT job_id FROM images").fetchall()
    assert {r["job_id"] for r in rows} == {jobs["good 1"], jobs["good 2"]}


def test_a_member_cancelled_mid_run_loses_only_its_images(
    db, conn, queue, gen_settings, run_worker, monkeypatch
):
    import enchant_worker.generation.generate as gen

    users = [_user(conn) for _ in range(3)]
    a, b, c = _enqueue(
        queue, [{"prompt": p, "seed": i} for i, p in enumerate(("a fox", "a ship", "a moon"))], users
    )
    real = gen._denoise

    def cancel_b_first(pipe, settings, items, chunk, chunks, on_progress, cancelled):
        # b is cancelled while the batched call runs; its worker hears of it (NOTIFY or heartbeat)
        with db.connection() as other:
            JobQueue(other).cancel(b)
        wait_for(lambda: sum(check() for check in cancelled) == 1, timeout=30)
        return real(pipe, settings, items, chunk, chunks, on_progress, cancelled)

    monkeypatch.setattr(gen, "_denoise", cancel_b_first)
    run_worker(generation_batch_size=4)
    assert queue.get(b).status == JobStatus.CANCELLED
    for job_id in (a, c):
        job = queue.get(job_id)
        assert job.status == JobStatus.COMPLETED, job.error_message
        assert job.result["details"]["batched_jobs"] == 3
    rows = conn.execute("SELECT job_id FROM images").fetchall()
    assert sorted(str(r["job_id"]) for r in rows) == sorted([str(a), str(c)])
    assert len(list((gen_settings.storage / "images").rglob("*.png"))) == 2


def test_out_of_memory_shrinks_the_batch_and_no_job_fails(conn, queue, gen_settings, run_worker, monkeypatch):
    import enchant_worker.generation.generate as gen

    real, sizes = gen._denoise, []

    def small_gpu(pipe, settings, items, *rest):
        sizes.append(len(items))
        if len(items) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
        return real(pipe, settings, items, *rest)

    monkeypatch.setattr(gen, "_denoise", small_gpu)
    jobs = _enqueue(
        queue,
        [{"prompt": p, "seed": i} for i, p in enumerate(("a fox", "a ship", "a moon"))],
        [_user(conn) for _ in range(3)],
    )
    run_worker(generation_batch_size=4)
    assert sizes == [3, 1, 1, 1]  # the batch of three ran out of memory, then one image per call
    for job_id in jobs:
        job = queue.get(job_id)
        assert job.status == JobStatus.COMPLETED and job.attempts == 1 and job.error_message is None
        assert job.result["details"]["batch_size"] == 1 and job.result["details"]["batched_jobs"] == 3


def test_a_worker_that_crashes_holding_a_batch_gives_each_job_back_once(
    db, conn, queue, gen_settings, run_worker, monkeypatch
):
    import enchant_worker.generation.generate as gen
    from enchant_worker.handlers import default_registry
    from enchant_worker.worker.heartbeat import Heartbeat
    from enchant_worker.worker.runner import Worker

    jobs = _enqueue(
        queue,
        [{"prompt": p, "seed": i} for i, p in enumerate(("a fox", "a ship", "a moon"))],
        [_user(conn) for _ in range(3)],
    )
    in_call, never = threading.Event(), threading.Event()

    def hang(*args):  # a GPU call that hangs: the worker is dead to the queue once its heartbeats stop
        in_call.set()
        never.wait(60)
        raise RuntimeError("the process is gone")

    monkeypatch.setattr(gen, "_denoise", hang)
    crashed = Worker(
        db,
        gen_settings.model_copy(update={"generation_batch_size": 4}),
        default_registry(plugins=False),
        job_types=["generate_image"],
    )
    thread = threading.Thread(target=crashed.run, daemon=True)
    thread.start()
    try:
        assert in_call.wait(60)
        # every member was marked started by a heartbeat, then the heartbeats stop (the process died)
        wait_for(
            lambda: conn.execute("SELECT bool_and(run_started) AS ran FROM processing_jobs").fetchone()[
                "ran"
            ],
            timeout=30,
        )
        monkeypatch.setattr(Heartbeat, "beat", lambda self, queue: None)
        conn.execute("UPDATE processing_jobs SET lease_expires_at = NOW() - interval '1 second'")
        reaped = queue.reap()
        assert len(reaped) == 3 and all(r["started"] and r["status"] == "pending" for r in reaped)
    finally:
        never.set()  # if it ever wakes, its late writes are refused: the reaper changed the lease tokens
        crashed.stop(now=True)
        thread.join(15)
    monkeypatch.undo()
    rows = conn.execute("SELECT status, attempts, crashes FROM processing_jobs").fetchall()
    assert [(r["status"], r["attempts"], r["crashes"]) for r in rows] == [("pending", 1, 1)] * 3
    run_worker(generation_batch_size=4)
    for job_id in jobs:
        job = queue.get(job_id)
        assert job.status == JobStatus.COMPLETED and job.attempts == 2, job.error_message
    counts = conn.execute("SELECT job_id, count(*) AS n FROM images GROUP BY job_id").fetchall()
    assert sorted(r["n"] for r in counts) == [1, 1, 1] and len(counts) == 3  # each done once
