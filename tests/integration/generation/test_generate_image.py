"""generate_image from a plain SQL insert to PNG files and images rows, through a real worker."""

from __future__ import annotations

import shutil
import threading
import uuid

import numpy as np
import pytest
from PIL import Image

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.generation.png_metadata import read_png_metadata
from enchant_worker.queue import JobQueue
from tests.support.waiting import wait_for

from .conftest import STEPS

EXPECTED_PROMPT = (
    "inkstyle, The queen confronts the traitor in the throne room, "
    "Alice, tall woman with silver hair, angry expression, intense, dramatic facial expression, "
    "hints of fear, clenched jaw, Bob, young squire with a scar, wary, "
    "Throne room, cold marble hall, watercolor, soft light"
)


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()["id"]


def sample_story(conn, storage, lora_sources) -> dict:
    """A story with a chapter 2 scene: two characters (an emotion; a branch look), a location, a preset,
    and story styles (one clamped, one for another scene, one still training)."""
    user = one(
        conn, "INSERT INTO users (email, subscription_tier) VALUES ('a@example.org', 'free') RETURNING id"
    )
    story = one(
        conn,
        "INSERT INTO stories (user_id, title, style_preference) VALUES (%s, 'The Queen', 'artistic') "
        "RETURNING id",
        user,
    )
    chapter = one(conn, "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 2) RETURNING id", story)
    place = one(
        conn,
        "INSERT INTO locations (story_id, name, description) "
        "VALUES (%s, 'Throne room', 'cold marble hall') RETURNING id",
        story,
    )
    scene = one(
        conn,
        "INSERT INTO scenes (chapter_id, content, summary, emotional_tone, location_id) "
        "VALUES (%s, 'Long text...', 'The queen confronts the traitor in the throne room', "
        "'tense', %s) RETURNING id",
        chapter,
        place,
    )
    other_scene = one(
        conn, "INSERT INTO scenes (chapter_id, summary) VALUES (%s, 'Elsewhere') RETURNING id", chapter
    )
    empty_scene = one(conn, "INSERT INTO scenes (chapter_id) VALUES (%s) RETURNING id", chapter)
    alice = one(
        conn,
        "INSERT INTO characters (story_id, name, appearance_description) "
        "VALUES (%s, 'Alice', 'tall woman with silver hair') RETURNING id",
        story,
    )
    bob = one(
        conn,
        "INSERT INTO characters (story_id, name, appearance_description) "
        "VALUES (%s, 'Bob', 'young squire') RETURNING id",
        story,
    )
    for character in (alice, bob):
        conn.execute(
            "INSERT INTO scene_characters (scene_id, character_id) VALUES (%s, %s)", (scene, character)
        )
    conn.execute(
        "INSERT INTO character_emotions (character_id, scene_id, primary_emotion, emotion_intensity, "
        "secondary_emotions, facial_expression_notes) VALUES (%s, %s, 'angry', 0.9, "
        "'{\"fear\": 0.5, \"joy\": 0.1}', 'clenched jaw')",
        (alice, scene),
    )
    branch = one(
        conn,
        "INSERT INTO story_branches (parent_story_id, branch_name, branch_point_chapter) "
        "VALUES (%s, 'dark', 1) RETURNING id",
        story,
    )
    for number, look, mood in ((1, "young squire with a scar", "wary"), (3, "knight in armour", "proud")):
        conn.execute(
            "INSERT INTO branch_character_states (branch_id, character_id, chapter_number, "
            "appearance_description, emotional_state) VALUES (%s, %s, %s, %s, %s)",
            (branch, bob, number, look, mood),
        )
    loras = {}
    for name, status, rng in (
        ("ink", "ready", '{"min": 0.5, "max": 0.9}'),
        ("water", "ready", None),
        ("sketch", "training", None),
    ):
        lora = one(
            conn,
            "INSERT INTO lora_models (user_id, name, model_file_url, trigger_words, strength_range, "
            "status) VALUES (%s, %s, 'pending', %s, COALESCE(%s::jsonb, '{\"min\": 0.5, \"max\": 1.0}'),"
            " %s) RETURNING id",
            user,
            name,
            [f"{name}style"],
            rng,
            status,
        )
        relative = f"loras/{lora}/{name}.safetensors"
        if name in lora_sources:
            (storage / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lora_sources[name], storage / relative)
        conn.execute("UPDATE lora_models SET model_file_url = %s WHERE id = %s", (relative, lora))
        loras[name] = lora
    conn.execute(
        "INSERT INTO story_lora_settings (story_id, lora_model_id, strength) VALUES (%s, %s, 1.0)",
        (story, loras["ink"]),
    )
    conn.execute(
        "INSERT INTO story_lora_settings (story_id, lora_model_id, strength, apply_to_scenes) "
        "VALUES (%s, %s, 0.7, %s)",
        (story, loras["water"], [str(other_scene)]),
    )
    conn.execute(
        "INSERT INTO story_lora_settings (story_id, lora_model_id) VALUES (%s, %s)", (story, loras["sketch"])
    )
    preset = one(
        conn,
        "INSERT INTO generation_presets (user_id, name, provider, model_name, parameters, "
        "style_modifiers) VALUES (%s, 'storybook', 'local', 'tiny-sd', "
        '\'{"steps": 2, "cfg": 5.0, "negative_prompt": "ugly, deformed"}\', '
        "ARRAY['watercolor', 'soft light']) RETURNING id",
        user,
    )
    return dict(
        user=user,
        story=story,
        scene=scene,
        other_scene=other_scene,
        empty_scene=empty_scene,
        branch=branch,
        preset=preset,
        **{f"lora_{k}": v for k, v in loras.items()},
    )


def pixels(storage, path) -> np.ndarray:
    with Image.open(storage / path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_scene_becomes_pngs_with_metadata_and_images_rows(
    conn, queue, gen_settings, run_worker, lora_sources
):
    storage = gen_settings.storage
    ids = sample_story(conn, storage, lora_sources)
    # A plain SQL insert, as the web app does
    job_id = one(
        conn,
        "INSERT INTO processing_jobs (job_type, entity_type, entity_id, metadata) "
        "VALUES ('generate_image', 'scene', %s, %s::jsonb) RETURNING id",
        ids["scene"],
        f'{{"branch_id": "{ids["branch"]}", "preset": "storybook", "seed": 42, "count": 2}}',
    )
    run_worker()

    job = queue.get(job_id)
    assert job.status == JobStatus.COMPLETED, job.error_message
    result = job.result
    assert result["prompt"]["prompt"] == EXPECTED_PROMPT
    assert result["prompt"]["negative_prompt"] == "ugly, deformed"
    sources = {p["source"].split(":")[0] for p in result["prompt"]["parts"]}
    assert sources >= {
        "lora_models",
        "scenes",
        "characters",
        "character_emotions",
        "branch_character_states",
        "locations",
        "generation_presets",
    }
    assert [lo["name"] for lo in result["loras"]] == ["ink"]  # water is for another scene, sketch is training
    assert result["loras"][0]["strength"] == 0.9 and "clamped" in result["loras"][0]["note"]
    assert any("sketch" in w and "training" in w for w in result["warnings"])
    assert result["seeds"] == [42, 43] and result["parameters"]["steps"] == STEPS
    assert result["parameters"]["cfg_scale"] == 5.0 and result["model"] == "tiny-sd"
    assert result["provider"] == "local"

    rows = conn.execute("SELECT * FROM images WHERE job_id = %s ORDER BY seed", (job_id,)).fetchall()
    assert [r["seed"] for r in rows] == [42, 43]
    assert [str(r["id"]) for r in rows] == [i["id"] for i in result["images"]]
    for row in rows:
        assert row["scene_id"] == ids["scene"] and row["user_id"] == ids["user"]
        assert row["provider"] == "local" and row["model_name"] == "tiny-sd"
        assert row["prompt"] == EXPECTED_PROMPT and (row["width"], row["height"]) == (64, 64)
        assert row["file_path"].startswith("images/") and not row["file_path"].startswith("/")
        assert set(row["timings"]) >= {"queue_wait_s", "model_load_s", "adapters_s", "denoise_s", "decode_s"}
        assert row["parameters"]["loras"][0]["strength"] == 0.9
        params, spec = read_png_metadata(storage / row["file_path"])
        assert params["Seed"] == str(row["seed"]) and params["Steps"] == str(STEPS)
        assert params["Model"] == "tiny-sd" and params["Size"] == "64x64"
        assert params["loras"] == [("ink", 0.9)] and set(params["Lora hashes"]) == {"ink"}
        assert params["prompt"] == EXPECTED_PROMPT and params["negative_prompt"] == "ugly, deformed"
        assert spec["scene_id"] == str(ids["scene"]) and spec["story_id"] == str(ids["story"])
        assert spec["job_id"] == str(job_id) and spec["branch_id"] == str(ids["branch"])
    assert (
        conn.execute("SELECT usage_count FROM generation_presets WHERE id = %s", (ids["preset"],)).fetchone()[
            "usage_count"
        ]
        == 1
    )


def test_same_seed_same_pixels_lora_strength_zero_is_the_base_and_loras_stack(
    conn, queue, gen_settings, run_worker, lora_sources
):
    storage = gen_settings.storage
    for name in ("ink", "water"):  # LoRAs named by file, found in storage/loras
        (storage / "loras").mkdir(parents=True, exist_ok=True)
        shutil.copy(lora_sources[name], storage / "loras" / f"{name}.safetensors")
    base = {"prompt": "a lighthouse in a storm", "seed": 7, "steps": STEPS}
    variants = {
        "base": [],
        "again": [],
        "zero": ["ink:0"],
        "ink": ["ink:0.8"],
        "stack": ["ink:0.8", "water:0.8"],
        "base_after": [],
    }
    jobs = {k: queue.enqueue(NewJob("generate_image", {**base, "loras": v})) for k, v in variants.items()}
    run_worker()
    images = {}
    for key, job_id in jobs.items():
        job = queue.get(job_id)
        assert job.status == JobStatus.COMPLETED, (key, job.error_message)
        images[key] = pixels(storage, job.result["images"][0]["path"])
    assert np.array_equal(images["base"], images["again"])
    assert np.array_equal(images["base"], images["zero"])
    assert not np.array_equal(images["base"], images["ink"])
    assert not np.array_equal(images["ink"], images["stack"])
    assert np.array_equal(images["base"], images["base_after"])  # LoRAs off again after LoRA jobs


def test_cancel_mid_generation_stops_within_a_step_and_writes_nothing(db, conn, queue, gen_settings):
    from enchant_worker.handlers import default_registry
    from enchant_worker.worker.runner import Worker

    job_id = queue.enqueue(
        NewJob("generate_image", {"prompt": "a very long night", "steps": 150, "size": "128x128", "seed": 1})
    )
    worker = Worker(db, gen_settings, default_registry(plugins=False), job_types=["generate_image"])
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: queue.get(job_id).progress_percent > 0, timeout=90)
        queue.cancel(job_id)
        wait_for(lambda: queue.get(job_id).status == JobStatus.CANCELLED, timeout=30)
    finally:
        worker.stop(now=True)
        thread.join(15)
    job = queue.get(job_id)
    assert job.progress_percent < 99  # stopped in the denoising loop, before the decode
    assert conn.execute("SELECT COUNT(*) AS n FROM images").fetchone()["n"] == 0
    assert not (gen_settings.storage / "images").exists()


def test_bad_input_fails_at_once_naming_the_problem_and_the_worker_goes_on(
    conn, queue, gen_settings, run_worker, lora_sources, tmp_path
):
    storage = gen_settings.storage
    ids = sample_story(conn, storage, lora_sources)
    loras = storage / "loras"
    (loras / "broken.safetensors").write_bytes(lora_sources["ink"].read_bytes()[:500])
    shutil.copy(lora_sources["xl"], loras / "xl.safetensors")
    (loras / "evil.ckpt").write_bytes(b"\x80\x04pickle")
    outside = tmp_path / "outside" / "stray.safetensors"
    outside.parent.mkdir()
    shutil.copy(lora_sources["ink"], outside)
    for name, url in (
        ("evil", "loras/evil.ckpt"),
        ("stray", str(outside)),
        ("remote", "https://x.org/a.safetensors"),
    ):
        conn.execute(
            "INSERT INTO lora_models (name, model_file_url, status) VALUES (%s, %s, 'ready')", (name, url)
        )

    prompt = {"prompt": "a castle", "steps": STEPS}
    bad = {
        "unknown scene": ({"scene_id": str(uuid.uuid4())}, "scene_id: no scene has id"),
        "empty scene": ({"scene_id": str(ids["empty_scene"])}, "scene_id: scene"),
        "unknown model": ({**prompt, "model": "sd99"}, "model: unknown model 'sd99'"),
        "unknown LoRA": ({**prompt, "loras": ["nosuch:0.5"]}, "loras[0].name: unknown LoRA 'nosuch'"),
        "unknown preset": ({**prompt, "preset": "nosuch"}, "preset: no generation preset 'nosuch'"),
        "steps": ({**prompt, "steps": 500}, "steps: must be from 1 to 150, not 500"),
        "size": ({**prompt, "size": "64x100"}, "size: must be a multiple of 8"),
        "cfg": ({**prompt, "cfg": 31}, "cfg: must be from 0.0 to 30.0"),
        "strength": (
            {**prompt, "loras": ["ink:1.5"]},
            "loras[0].strength: must be from 0.5 to 0.9 for LoRA 'ink'",
        ),
        "truncated": ({**prompt, "loras": ["broken"]}, "truncated"),
        "family": ({**prompt, "loras": ["xl:0.5"]}, "made for sdxl"),
        "pickle": ({**prompt, "loras": ["evil:0.5"]}, "not a .safetensors file"),
        "outside": ({**prompt, "loras": ["stray:0.5"]}, "outside the allowed folders"),
        "remote": ({**prompt, "loras": ["remote:0.5"]}, "only local files are loaded"),
        "branch": (
            {"scene_id": str(ids["scene"]), "branch_id": str(uuid.uuid4())},
            "branch_id: no story branch",
        ),
    }
    jobs = {k: queue.enqueue(NewJob("generate_image", meta)) for k, (meta, _) in bad.items()}
    long_prompt = " ".join(f"word{i}" for i in range(120))
    good = queue.enqueue(NewJob("generate_image", {"prompt": long_prompt, "steps": STEPS}))
    run_worker()

    for key, (_, expected) in bad.items():
        job = queue.get(jobs[key])
        assert job.status == JobStatus.FAILED, key
        assert job.attempts == 1, key  # not retried
        assert expected in job.error_message, (key, job.error_message)
        assert "Traceback" not in job.error_message
    done = queue.get(good)
    assert done.status == JobStatus.COMPLETED, done.error_message
    assert any("truncated" in w for w in done.result["warnings"])
    rows = conn.execute("SELECT job_id, file_path FROM images").fetchall()
    assert {r["job_id"] for r in rows} == {good}
    assert {str(p.relative_to(storage)) for p in (storage / "images").rglob("*.png")} == {
        r["file_path"] for r in rows
    }
