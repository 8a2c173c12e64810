"""generate_image end to end: a real Postgres, the tiny model on the CPU, a worker in a thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.workers import WorkerThreads

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[3]
STEPS = 2  # enough to exercise the loop; the tiny model takes milliseconds per step


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    from enchant_worker.generation.tiny_model import save_tiny_model

    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "tiny-sd")
    return folder


@pytest.fixture(scope="session")
def lora_sources(models_dir, tmp_path_factory) -> dict[str, Path]:
    """Random LoRA files for the tiny model (copied into each test's storage as needed)."""
    from diffusers import StableDiffusionPipeline

    from enchant_worker.generation.tiny_model import save_random_lora

    pipe = StableDiffusionPipeline.from_pretrained(str(models_dir / "tiny-sd"), local_files_only=True)
    folder = tmp_path_factory.mktemp("lora-sources")
    return {
        "ink": save_random_lora(pipe, folder / "ink.safetensors", seed=1, scale=4.0),
        "water": save_random_lora(pipe, folder / "water.safetensors", seed=2, scale=4.0),
        "xl": save_random_lora(pipe, folder / "xl.safetensors", family="sdxl", seed=3),
    }


@pytest.fixture
def gen_settings(settings, models_dir):
    from enchant_worker.handlers.generate_image import forget_providers

    s = settings.model_copy(
        update={
            "models_dir": models_dir,
            "models_config": REPO / "configs" / "models.toml",
            "device": "cpu",
            "dtype": "auto",
        }
    )
    yield s
    forget_providers()  # each test has its own storage, hence its own provider set


@pytest.fixture
def run_worker(db, gen_settings):
    """Run a burst worker serving generate_image until nothing is runnable."""

    def run(timeout: float = 120.0, **overrides) -> None:
        workers = WorkerThreads(db, gen_settings)
        _, thread = workers.start(types=["generate_image"], burst=True, **overrides)
        thread.join(timeout)
        if thread.is_alive():
            workers.stop_all(15)
            raise AssertionError("the worker did not finish in time")

    return run
