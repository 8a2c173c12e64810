"""Image quality through the queue on the tiny model: every stored image gets its analysis, prompt
alignment runs with a configured `kind = "clip"` model (and is skipped, saying why, without one), a
missing or corrupt file is said so while the job completes, and weak images are re-generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enchant_worker.domain.jobs import JobStatus
from enchant_worker.handlers import generate_image
from enchant_worker.queue import JobQueue

from .conftest import REPO, STEPS


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from enchant_worker.generation.tiny_clip import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def clip_config(tmp_path, tiny_clip_dir) -> Path:
    """The repository's models.toml plus the tiny CLIP as a `kind = "clip"` model."""
    path = tmp_path / "models.toml"
    path.write_text(
        (REPO / "configs" / "models.toml").read_text() + f'\n[models.tiny-clip]\nkind = "clip"\n'
        f'path = {json.dumps(str(tiny_clip_dir))}\nbuiltin = "tiny"\n'
    )
    return path


@pytest.fixture(autouse=True)
def _fresh_scorers():
    from enchant_worker.generation.clip_alignment import forget_scorers

    yield
    forget_scorers()


def enqueue(conn, **metadata) -> str:
    body = {"prompt": "a castle at night", "steps": STEPS, **metadata}
    return conn.execute(
        "INSERT INTO processing_jobs (job_type, metadata) VALUES ('generate_image', %s::jsonb) RETURNING id",
        (json.dumps(body),),
    ).fetchone()["id"]


def rows(conn, job_id) -> list[dict]:
    return conn.execute("SELECT * FROM images WHERE job_id = %s ORDER BY seed", (job_id,)).fetchall()


def test_every_new_image_gets_its_quality_and_alignment_is_skipped_without_clip(conn, run_worker):
    job_id = enqueue(conn, seed=7, count=3)
    run_worker()
    job = JobQueue(conn).get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    stored = rows(conn, job_id)
    assert len(stored) == 3
    for row in stored:
        quality = row["quality"]
        assert quality["status"] in ("ok", "broken") and quality["version"] == 1
        assert row["quality_score"] == pytest.approx(quality["score"], abs=1e-6)
        assert 0.0 <= row["quality_score"] <= 1.0
        assert {"exposure", "contrast", "sharpness", "flags", "scores"} <= quality.keys()
        assert quality["alignment"]["status"] == "skipped"
        assert 'kind = "clip"' in quality["alignment"]["reason"]  # says how to get one
    assert [i["quality_score"] for i in job.result["images"]] == [r["quality_score"] for r in stored]
    assert job.result["timings_s"]["quality_s"] >= 0 and job.result["regenerations"] == []


def test_alignment_uses_a_configured_clip_model(conn, run_worker, clip_config):
    job_id = enqueue(conn, seed=3, count=2)
    run_worker(models_config=clip_config)
    job = JobQueue(conn).get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    for row in rows(conn, job_id):
        alignment = row["quality"]["alignment"]
        assert alignment["status"] == "ok" and alignment["model"] == "tiny-clip"
        assert -1.0 <= alignment["similarity"] <= 1.0
        assert alignment["clip_score"] == pytest.approx(100 * max(alignment["similarity"], 0), abs=0.01)
    assert job.result["timings_s"]["alignment_s"] > 0


def test_a_missing_or_corrupt_file_is_said_so_and_the_job_completes(conn, run_worker, monkeypatch):
    written = []
    real_write = generate_image._write_once

    def flaky_write(storage, key: str, data: bytes) -> None:
        path = storage.local_path(key)
        written.append(path)
        if len(written) == 2:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[: len(data) // 2])  # truncated: a corrupt PNG
        elif len(written) == 3:
            return  # never written: the file is missing
        else:
            real_write(storage, key, data)

    monkeypatch.setattr(generate_image, "_write_once", flaky_write)
    job_id = enqueue(conn, seed=11, count=3)
    run_worker()
    job = JobQueue(conn).get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    good, corrupt, missing = rows(conn, job_id)
    assert good["quality"]["status"] in ("ok", "broken") and good["quality_score"] is not None
    assert corrupt["quality"]["status"] == "unreadable" and corrupt["quality_score"] is None
    assert (
        "is corrupt: its" in corrupt["quality"]["reason"]
        and "not those written" in corrupt["quality"]["reason"]
    )
    assert missing["quality"]["status"] == "unreadable" and "is missing" in missing["quality"]["reason"]
    assert missing["quality"]["alignment"]["reason"] == "the image file could not be read"
    warnings = [w for w in job.result["warnings"] if "quality is unknown" in w]
    assert len(warnings) == 2 and "seed 12" in warnings[0] and "seed 13" in warnings[1]


def test_images_below_the_threshold_are_drawn_again_with_new_seeds(conn, run_worker):
    stride = generate_image.REGENERATION_SEED_STRIDE
    job_id = enqueue(conn, seed=5, count=2, regenerate_below=1.0, max_regenerations=2)  # 1.0: never reached
    run_worker()
    job = JobQueue(conn).get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    stored = rows(conn, job_id)
    assert len(stored) == 2  # the rejected draws are recorded, not stored
    for own_seed, row in zip((5, 6), sorted(stored, key=lambda r: r["seed"] % stride), strict=True):
        tries = row["quality"]["regenerations"]
        assert [t["seed"] for t in tries] == [own_seed, own_seed + stride, own_seed + 2 * stride]
        kept = [t for t in tries if t["kept"]]
        assert len(kept) == 1 and kept[0]["seed"] == row["seed"]
        assert kept[0]["score"] == max(t["score"] for t in tries)  # none passed: the best is kept
        assert row["quality_score"] == pytest.approx(kept[0]["score"], abs=1e-4)
    assert [r["image"] for r in job.result["regenerations"]] == [0, 1]
    assert "regenerate_s" in job.result["timings_s"]


def test_a_threshold_every_image_passes_draws_nothing_again(conn, run_worker):
    job_id = enqueue(conn, seed=5, count=1, regenerate_below=0.0, max_regenerations=3)
    run_worker()
    job = JobQueue(conn).get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    (row,) = rows(conn, job_id)
    assert row["seed"] == 5 and "regenerations" not in row["quality"] and job.result["regenerations"] == []


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"regenerate_below": 1.5}, "regenerate_below: must be from 0.0 to 1.0, not 1.5"),
        ({"regenerate_below": "high"}, "regenerate_below: must be a number from 0.0 to 1.0"),
        ({"regenerate_below": 0.5, "max_regenerations": 4}, "max_regenerations: must be from 1 to 3, not 4"),
        ({"max_regenerations": 2}, "max_regenerations: applies only with regenerate_below"),
    ],
)
def test_bad_regeneration_settings_fail_at_once_naming_the_field(conn, run_worker, metadata, message):
    job_id = enqueue(conn, **metadata)
    good = enqueue(conn, seed=1)
    run_worker()
    queue = JobQueue(conn)
    bad_job = queue.get(job_id)
    assert bad_job.status == JobStatus.FAILED and message in bad_job.error_message
    assert bad_job.attempts == 1  # a validation error is not retried
    assert queue.get(good).status == JobStatus.COMPLETED  # the worker went on
