"""Warm affinity end to end: a worker that can hold one base model drains an interleaved queue model by
model, because it advertises what its provider has loaded (the handler's `resident` hook)."""

import shutil

import pytest

from enchant_worker.domain.jobs import NewJob
from enchant_worker.handlers.generate_image import providers_for, resident
from enchant_worker.queue import JobQueue
from enchant_worker.queue.affinity import Warm
from tests.support.workers import WorkerThreads


@pytest.fixture
def two_models(gen_settings, models_dir, tmp_path):
    folder = tmp_path / "models"
    for name in ("a", "b"):
        shutil.copytree(models_dir / "tiny-sd", folder / name)
    config = tmp_path / "models.toml"
    config.write_text(
        'default = "a"\n'
        + "".join(
            f'[models.{m}]\npath = "{m}"\nfamily = "sd15"\n[models.{m}.defaults]\nwidth = 64\nheight = 64\n'
            for m in ("a", "b")
        )
    )
    return gen_settings.model_copy(
        update={"models_dir": folder, "models_config": config, "model_cache_max_models": 1}
    )


def _drain(db, conn, settings, wait_s):
    settings = settings.model_copy(update={"affinity_max_wait_s": wait_s})
    ids = JobQueue(conn).enqueue_many(
        [NewJob("generate_image", {"prompt": "a fox", "model": m, "steps": 2}) for m in ("a", "b") * 3]
    )
    workers = WorkerThreads(db, settings)
    _, thread = workers.start(types=["generate_image"], burst=True)
    thread.join(300)
    if thread.is_alive():
        workers.stop_all(15)
        raise AssertionError("the worker did not finish in time")
    rows = conn.execute(
        "SELECT status, result->>'model' AS model FROM processing_jobs WHERE id = ANY(%s) "
        "ORDER BY started_at",
        (ids,),
    ).fetchall()
    assert [r["status"] for r in rows] == ["completed"] * 6
    return [r["model"] for r in rows], providers_for(settings).get("local").pipelines.loads


def test_the_worker_takes_the_jobs_of_its_resident_model_first(db, conn, two_models):
    models, loads = _drain(db, conn, two_models, wait_s=600)
    assert models == ["a", "a", "a", "b", "b", "b"] and loads == 2
    # what it advertises now: the keys of model b's jobs (the default model's key '' is not among them)
    assert resident(two_models) == Warm.of(["b"])


def test_without_the_preference_every_switch_reloads(db, conn, two_models):
    models, loads = _drain(db, conn, two_models, wait_s=0)
    assert models == ["a", "b"] * 3 and loads == 6
