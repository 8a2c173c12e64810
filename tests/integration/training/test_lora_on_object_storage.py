"""A LoRA trained on one host with S3-compatible storage is used on another: its files go up before the
row says ready, and a generate_image worker with another home folder fetches them into its cache."""

from __future__ import annotations

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.intake import SYSTEM_ACTOR
from enchant_worker.intake.training import initiate_lora_training
from enchant_worker.storage import from_url
from tests.support.object_storage import BUCKET, make_bucket, s3_env, s3_server
from tests.support.workers import WorkerThreads

pytestmark = pytest.mark.timeout(300)


def test_a_lora_trained_on_one_host_paints_on_another(
    conn, db, queue, train_settings, images, request_for, tmp_path, monkeypatch
):
    with s3_server() as endpoint:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)
        make_bucket(endpoint)
        url = f"s3://{BUCKET}/styles"
        trainer_host = train_settings.model_copy(update={"storage_url": url})
        painter_host = train_settings.model_copy(
            update={
                "storage_url": url,
                "home": tmp_path / "painter",
                "storage_dir": tmp_path / "painter-storage",
            }
        )
        lora_id, train_job = initiate_lora_training(conn, SYSTEM_ACTOR, trainer_host, request_for(images))
        workers = WorkerThreads(db, trainer_host)
        try:
            _, thread = workers.start(types=["train_lora"], burst=True)
            thread.join(timeout=200)
            trained = queue.get(train_job)
            assert trained.status == JobStatus.COMPLETED, trained.error_message
            objects = from_url(url)
            row = conn.execute("SELECT model_file_url FROM lora_models WHERE id = %s", (lora_id,)).fetchone()
            for key in (row["model_file_url"], trained.result["kohya_file"], trained.result["preview_image"]):
                assert objects.exists(key), key

            paint = queue.enqueue(
                NewJob(
                    "generate_image",
                    {
                        "prompt": "inkwash harbour",
                        "steps": 2,
                        "seed": 5,
                        "width": 64,
                        "height": 64,
                        "loras": [{"lora_model_id": str(lora_id), "strength": 0.8}],
                    },
                )
            )
            painter = WorkerThreads(db, painter_host)
            try:
                _, thread = painter.start(types=["generate_image"], burst=True)
                thread.join(timeout=200)
            finally:
                painter.stop_all()
            painted = queue.get(paint)
            assert painted.status == JobStatus.COMPLETED, painted.error_message
            assert [lo["name"] for lo in painted.result["loras"]] == ["Ink Wash"]
            cached = painter_host.storage_cache / row["model_file_url"]
            assert cached.read_bytes() == objects.get_bytes(row["model_file_url"])
            assert objects.exists(painted.result["images"][0]["path"])
            assert not (tmp_path / "painter-storage" / row["model_file_url"]).exists()
        finally:
            workers.stop_all()
            from enchant_worker.handlers.generate_image import forget_providers

            forget_providers()
