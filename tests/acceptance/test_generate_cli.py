"""`models` and `generate` as a user runs them: the tiny model, a burst worker, PNGs on disk, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

CLI = [sys.executable, "-m", "enchant_worker.cli"]


def cli(env, *args, timeout=180):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, request) -> Path:
    """`models build-tiny --path`, run once for the module."""
    import os

    folder = tmp_path_factory.mktemp("models")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = cli(env, "models", "build-tiny", "--path", str(folder / "tiny-sd"))
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == (folder / "tiny-sd").resolve()
    return folder


@pytest.fixture
def env(cli_env, tiny_models):
    return dict(cli_env, ENCHANT_MODELS_DIR=str(tiny_models), ENCHANT_DEVICE="cpu", HF_HUB_OFFLINE="1")


def test_build_tiny_writes_a_loadable_diffusers_folder(tiny_models):
    folder = tiny_models / "tiny-sd"
    assert (folder / "model_index.json").is_file() and (folder / "enchant_tiny_model.json").is_file()
    assert list((folder / "tokenizer").glob("tokenizer*.json"))
    assert list((folder / "unet").glob("*.safetensors"))
    assert not list(tiny_models.glob(".tiny-sd.*"))  # no staging folder left behind


def test_models_list_names_the_default_tiny_model(env):
    out = cli(env, "models", "list")
    assert out.returncode == 0, out.stderr
    assert "tiny-sd*" in out.stdout and "sd15" in out.stdout


def test_generate_then_a_burst_worker_writes_pngs_and_wait_prints_their_paths(env, conn, tmp_path):
    queued = cli(
        env, "generate", "--prompt", "a lighthouse in a storm", "--steps", "2", "--seed", "3", "--no-wait"
    )
    assert queued.returncode == 0, queued.stderr
    job_id = uuid.UUID(queued.stdout.strip())
    # a LoRA row whose file is remote: accepted at enqueue, refused by the worker (nothing is downloaded)
    conn.execute(
        "INSERT INTO lora_models (name, model_file_url, status) "
        "VALUES ('remote', 'https://example.org/remote.safetensors', 'ready')"
    )
    waiting = subprocess.Popen(
        [
            *CLI,
            "generate",
            "--prompt",
            "a quiet harbour",
            "--steps",
            "2",
            "--count",
            "2",
            "--lora",
            "remote:0.5",
            "--wait",
            "--timeout",
            "170",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while conn.execute("SELECT COUNT(*) AS n FROM processing_jobs").fetchone()["n"] < 2:
        assert time.monotonic() < deadline and waiting.poll() is None, waiting.communicate()
        time.sleep(0.1)
    worker = cli(env, "worker", "--burst", "--types", "generate_image")
    assert worker.returncode == 0, worker.stderr
    out, err = waiting.communicate(timeout=60)

    job = conn.execute(
        "SELECT status, result, error_message FROM processing_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert job["status"] == "completed", job["error_message"]
    storage = Path(env["ENCHANT_HOME"]) / "storage"
    [image] = job["result"]["images"]
    with Image.open(storage / image["path"]) as png:
        assert png.format == "PNG" and png.size == (64, 64) and "Seed: 3" in png.text["parameters"]
    # The waiting command's job named a LoRA the worker may not load: it failed at once, said why
    assert waiting.returncode == 1
    assert "only local files are loaded" in err and "Traceback" not in err


def test_generate_wait_prints_the_image_paths(env, conn):
    waiting = subprocess.Popen(
        [
            *CLI,
            "generate",
            "--prompt",
            "a red door",
            "--steps",
            "2",
            "--count",
            "2",
            "--seed",
            "11",
            "--wait",
            "--timeout",
            "170",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while conn.execute("SELECT COUNT(*) AS n FROM processing_jobs").fetchone()["n"] < 1:
        assert time.monotonic() < deadline and waiting.poll() is None, waiting.communicate()
        time.sleep(0.1)
    worker = cli(env, "worker", "--burst", "--types", "generate_image")
    assert worker.returncode == 0, worker.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    paths = [Path(line) for line in out.split()]
    assert len(paths) == 2 and all(p.is_absolute() and p.suffix == ".png" and p.is_file() for p in paths)
    assert all(f"{p.name}: quality " in err for p in paths)  # each image's quality score, on stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "2"], "one of the arguments --scene --prompt is required"),
        (["--prompt", "x", "--steps", "0"], "error: steps: must be from 1 to 150, not 0"),
        (["--prompt", "x", "--size", "100x100"], "error: size: must be a multiple of 8"),
        (["--prompt", "x", "--lora", "ink:lots"], "error: loras[0]: strength must be a number, not 'lots'"),
        (["--prompt", "x", "--lora", "nosuch:0.5"], "error: loras[0].name: unknown LoRA 'nosuch'"),
        (["--prompt", "x", "--count", "99"], "error: count: must be from 1 to 8, not 99"),
        (
            ["--prompt", "x", "--regenerate-below", "2"],
            "error: regenerate_below: must be from 0.0 to 1.0, not 2.0",
        ),
        (
            ["--prompt", "x", "--regenerate-below", "0.5", "--max-regenerations", "5"],
            "error: max_regenerations: must be from 1 to 3, not 5",
        ),
        (["--prompt", "x", "--model", "sd99"], "error: model: unknown model 'sd99'"),
        (["--scene", "not-a-uuid"], "'not-a-uuid' is not a UUID"),
        (["--scene", "00000000-0000-0000-0000-000000000001"], "error: scene_id: no scene has id"),
    ],
)
def test_bad_input_is_refused_before_enqueueing_with_a_clear_message(env, conn, args, message):
    out = cli(env, "generate", *args, "--no-wait", timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert conn.execute("SELECT COUNT(*) AS n FROM processing_jobs").fetchone()["n"] == 0


def test_sample_story_is_illustrated_in_its_lora_style_by_a_burst_worker(env, conn):
    queued = cli(env, "sample-story", "--steps", "2", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    job_ids = [uuid.UUID(line) for line in queued.stdout.split()]
    assert len(job_ids) == 2
    worker = cli(env, "worker", "--burst", "--types", "generate_image")
    assert worker.returncode == 0, worker.stderr
    storage = Path(env["ENCHANT_HOME"]) / "storage"
    for job_id in job_ids:
        job = conn.execute(
            "SELECT status, result, error_message FROM processing_jobs WHERE id = %s", (job_id,)
        ).fetchone()
        assert job["status"] == "completed", job["error_message"]
        prompt = job["result"]["prompt"]["prompt"]
        assert prompt.startswith("inkwash style, Mara") and "the lighthouse" in prompt
        assert [lo["name"] for lo in job["result"]["loras"]] == ["inkwash"]
        assert all((storage / image["path"]).is_file() for image in job["result"]["images"])
    first = conn.execute("SELECT result FROM processing_jobs WHERE id = %s", (job_ids[0],)).fetchone()[
        "result"
    ]
    assert (
        "determined expression, intense, dramatic facial expression, hints of fear"
        in first["prompt"]["prompt"]
    )
