"""train_lora end to end through the queue and a worker, on the tiny model."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.intake import SYSTEM_ACTOR
from enchant_worker.intake.training import initiate_lora_training
from enchant_worker.jobspecs import job_types
from enchant_worker.sql import q
from enchant_worker.training import trainer
from enchant_worker.worker import runner
from tests.support.waiting import wait_for


def storage_of(settings) -> Path:
    return Path(settings.storage)


def lora_row(conn, lora_id):
    return conn.execute(q("lora_training_get"), {"id": lora_id}).fetchone()


def test_initiated_training_runs_to_a_ready_lora_with_files_and_a_preview(
    conn, queue, train_settings, images, request_for, start_worker
):
    # the checkpoint cadence comes from the settings when the request names none
    train_settings = train_settings.model_copy(update={"lora_checkpoint_every_steps": 2})
    request = request_for(images)
    del request["checkpoint_every"]
    lora_id, job_id = initiate_lora_training(conn, SYSTEM_ACTOR, train_settings, request)
    assert "checkpoint_every" not in queue.get(job_id).metadata
    job = queue.get(job_id)
    assert job.priority == job_types()["train_lora"].priority > 5
    assert (job.entity_type, job.entity_id) == ("lora_model", lora_id)
    assert lora_row(conn, lora_id)["status"] == "training"
    assert lora_row(conn, lora_id)["training_job_id"] == job_id

    _, thread = start_worker(burst=True, lora_checkpoint_every_steps=2)
    thread.join(timeout=120)
    job = queue.get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert job.progress["step"] == job.progress["total"] == 4
    assert {"loss", "eta_s", "s_per_step"} <= set(job.progress)
    checkpoints = storage_of(train_settings) / "training" / str(lora_id) / "work" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["step-00000002"]

    row = lora_row(conn, lora_id)
    storage = Path(train_settings.storage)
    assert row["status"] == "ready" and row["error_message"] is None
    assert row["training_images_count"] == 5 and row["trigger_words"] == ["inkwash"]
    assert row["model_file_url"] == f"loras/{lora_id}/ink-wash.safetensors"
    assert (storage / row["model_file_url"]).is_file()
    assert (storage / job.result["kohya_file"]).is_file()  # results name storage paths only
    assert job.result["flagged_images"] and "48" in str(job.result["flagged_images"])

    preview = storage / job.result["preview_image"]
    assert preview.is_file() and preview.parent == (storage / row["model_file_url"]).parent
    image = conn.execute(
        "SELECT * FROM images WHERE parameters->>'lora_model_id' = %s", (str(lora_id),)
    ).fetchone()
    assert image["file_path"] == job.result["preview_image"] and image["job_id"] == job_id
    assert image["prompt"] == "inkwash" and image["parameters"]["preview"] is True
    # the preview's quality is measured too (no clip model configured here: alignment skipped)
    assert image["quality"]["status"] in ("ok", "broken") and image["quality_score"] is not None
    assert image["quality"]["alignment"]["status"] == "skipped"


def test_a_stopped_worker_hands_training_back_and_another_resumes_from_the_checkpoint(
    conn, queue, train_settings, images, request_for, start_worker
):
    lora_id, job_id = initiate_lora_training(
        conn, SYSTEM_ACTOR, train_settings, request_for(images, max_train_steps=12, checkpoint_every=3)
    )
    worker, thread = start_worker()
    wait_for(lambda: (queue.get(job_id).progress or {}).get("step", 0) >= 4)
    worker.stop(now=True)  # no grace: the run checkpoints where it is and the job goes back
    thread.join(timeout=60)
    job = queue.get(job_id)
    assert job.status == JobStatus.PENDING and job.attempts == 0  # no attempt spent
    assert lora_row(conn, lora_id)["status"] == "training"
    checkpoints = storage_of(train_settings) / "training" / str(lora_id) / "work" / "checkpoints"
    saved = max(int(p.name.removeprefix("step-")) for p in checkpoints.glob("step-*"))
    assert 4 <= saved < 12

    _, thread = start_worker(burst=True)
    thread.join(timeout=120)
    job = queue.get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert job.result["resumed_from_step"] == saved and job.result["steps"] == 12
    assert lora_row(conn, lora_id)["status"] == "ready"


def test_waiting_generation_preempts_training_which_then_completes(
    conn, queue, train_settings, images, request_for, start_worker, monkeypatch
):
    # timing made independent of the machine: each step takes at least 50 ms, the check is asked often
    monkeypatch.setattr(runner, "PREEMPT_CHECK_S", 0.2)
    step = trainer.training_step
    monkeypatch.setattr(trainer, "training_step", lambda *a: (time.sleep(0.05), step(*a))[1])
    lora_id, train_id = initiate_lora_training(
        conn, SYSTEM_ACTOR, train_settings, request_for(images, max_train_steps=40, checkpoint_every=100)
    )
    # runnable a moment after the worker has leased the training job; better priority (5 < 8)
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    gen_id = queue.enqueue(NewJob("generate_image", {"prompt": "a castle", "steps": 2}, run_after=soon))

    _, thread = start_worker(types=("train_lora", "generate_image"), burst=True, preempt_after_s=0)
    thread.join(timeout=180)
    gen, train = queue.get(gen_id), queue.get(train_id)
    assert gen.status == JobStatus.COMPLETED, gen.error_message
    assert train.status == JobStatus.COMPLETED, train.error_message
    assert gen.completed_at < train.completed_at
    assert 0 < train.result["resumed_from_step"] < 40 and train.result["steps"] == 40
    assert train.attempts == 1  # the preempted lease was given back without spending an attempt
    assert lora_row(conn, lora_id)["status"] == "ready"
