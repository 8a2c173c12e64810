"""Bad training requests: refused before anything is written (initiating), or failed at once by the
worker with a message naming the field, the LoRA marked failed with the reason, the worker still serving."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.domain.training import train_lora_job
from enchant_worker.errors import InvalidJob
from enchant_worker.handlers.train_lora import initiate_lora_training
from enchant_worker.sql import q

from .conftest import write_images


def _nothing_written(conn, settings) -> None:
    assert conn.execute("SELECT count(*) AS n FROM lora_models").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0
    training = Path(settings.storage) / "training"
    assert not training.exists() or not any(training.iterdir())


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"rank": 0}, "rank", "between 1 and 256"),
        ({"learning_rate": 1.0}, "learning_rate", "between"),
        ({"resolution": 100}, "resolution", "multiple of 8"),
        ({"base_model": "no-such-model"}, "base_model", "unknown base model"),
        ({"user_id": str(uuid.uuid4())}, "user_id", "no user"),
    ],
)
def test_initiating_refuses_bad_fields_and_writes_nothing(
    conn, train_settings, images, request_for, change, field, detail
):
    with pytest.raises(InvalidJob) as raised:
        initiate_lora_training(conn, train_settings, request_for(images, **change))
    assert field in str(raised.value) and detail in str(raised.value)
    _nothing_written(conn, train_settings)


def test_initiating_refuses_bad_images_naming_each_file(conn, train_settings, images, request_for, tmp_path):
    (images / "notes.pdf").write_bytes(b"%PDF-1.4 not an image")
    (images / "broken.png").write_bytes((images / "img1.png").read_bytes()[:60])
    with pytest.raises(InvalidJob) as raised:
        initiate_lora_training(conn, train_settings, request_for(images))
    message = str(raised.value)
    assert "training_images" in message and "notes.pdf" in message and "broken.png" in message
    _nothing_written(conn, train_settings)


def test_image_count_limits_come_from_the_settings(conn, train_settings, request_for, tmp_path):
    few = write_images(tmp_path / "few", sizes=[(64, 64)] * 3)
    with pytest.raises(InvalidJob, match=r"training_images: 3 image\(s\) given; between 5 and 50"):
        initiate_lora_training(conn, train_settings, request_for(few))
    _nothing_written(conn, train_settings)
    relaxed = train_settings.model_copy(update={"min_training_images": 2, "max_training_images": 3})
    lora_id, _ = initiate_lora_training(conn, relaxed, request_for(few))
    assert conn.execute(q("lora_training_get"), {"id": lora_id}).fetchone()["training_images_count"] == 3


def test_bad_jobs_fail_at_once_naming_the_field_and_the_worker_goes_on(
    conn, queue, train_settings, images, request_for, tmp_path, start_worker
):
    few = write_images(tmp_path / "few", sizes=[(64, 64)] * 2)
    cases = {
        "rank": request_for(images, rank=0),
        "base_model": request_for(images, base_model="no-such-model"),
        "training_images": request_for(few),
    }
    jobs = {}
    for field, request in cases.items():  # as a web app would: a row and a job, no checks first
        lora_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO lora_models (id, name, model_file_url) VALUES (%s, 'bad', 'loras/x.safetensors')",
            (lora_id,),
        )
        jobs[field] = (lora_id, queue.enqueue(train_lora_job(lora_id, request)))
    noop = queue.enqueue(NewJob("noop"))

    _, thread = start_worker(types=("train_lora", "noop"), burst=True)
    thread.join(timeout=60)
    for field, (lora_id, job_id) in jobs.items():
        job = queue.get(job_id)
        assert job.status == JobStatus.FAILED and job.attempts == 1
        assert job.error_message.startswith("invalid input:") and field in job.error_message
        row = conn.execute(q("lora_training_get"), {"id": lora_id}).fetchone()
        assert row["status"] == "failed" and field in row["error_message"]
        assert row["training_job_id"] == job_id
    assert queue.get(noop).status == JobStatus.COMPLETED
