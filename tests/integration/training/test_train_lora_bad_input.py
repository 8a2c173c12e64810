"""Bad training requests: refused before anything is written (initiating), or failed at once by the
worker with a message naming the field, the LoRA marked failed with the reason, the worker still serving."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.errors import AccessDenied, InvalidJob
from enchant_worker.handlers.train_lora import dataset_limits
from enchant_worker.intake import SYSTEM_ACTOR
from enchant_worker.intake.training import initiate_lora_training
from enchant_worker.sql import q
from enchant_worker.training.dataset import prepare_dataset

from .conftest import train_lora_job, write_images


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
        initiate_lora_training(conn, SYSTEM_ACTOR, train_settings, request_for(images, **change))
    assert field in str(raised.value) and detail in str(raised.value)
    _nothing_written(conn, train_settings)


def test_initiating_refuses_folders_outside_the_training_roots(
    conn, train_settings, request_for, tmp_path_factory
):
    outside = write_images(tmp_path_factory.mktemp("elsewhere") / "images")
    with pytest.raises(AccessDenied, match="ENCHANT_TRAINING_DIRS") as raised:
        initiate_lora_training(conn, SYSTEM_ACTOR, train_settings, request_for(outside))
    assert str(outside) not in str(raised.value)
    _nothing_written(conn, train_settings)


def test_image_count_limits_come_from_the_settings(train_settings, request_for, tmp_path):
    from enchant_worker.jobspecs.train_lora import parse_training_request

    few = write_images(tmp_path / "few", sizes=[(64, 64)] * 3)
    spec = parse_training_request(request_for(few))
    with pytest.raises(InvalidJob, match=r"training_images: 3 image\(s\) given; between 5 and 50"):
        prepare_dataset(spec, tmp_path / "a", **dataset_limits(train_settings))
    relaxed = train_settings.model_copy(update={"min_training_images": 2, "max_training_images": 3})
    assert len(prepare_dataset(spec, tmp_path / "b", **dataset_limits(relaxed)).images) == 3


def test_bad_jobs_fail_at_once_naming_the_field_and_the_worker_goes_on(
    conn, queue, train_settings, images, request_for, tmp_path, start_worker
):
    few = write_images(tmp_path / "few", sizes=[(64, 64)] * 2)
    broken = write_images(tmp_path / "broken")
    (broken / "notes.pdf").write_bytes(b"%PDF-1.4 not an image")
    (broken / "bad.png").write_bytes((broken / "img1.png").read_bytes()[:60])
    cases = {
        "rank": request_for(images, rank=0),
        "base_model": request_for(images, base_model="no-such-model"),
        "training_images": request_for(few),
        "notes.pdf": request_for(broken),  # every unusable file named, in one message
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
        if field == "notes.pdf":
            assert "bad.png" in job.error_message
        row = conn.execute(q("lora_training_get"), {"id": lora_id}).fetchone()
        assert row["status"] == "failed" and field in row["error_message"]
        assert row["training_job_id"] == job_id
    assert queue.get(noop).status == JobStatus.COMPLETED
