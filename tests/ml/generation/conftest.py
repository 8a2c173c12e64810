"""Tiny model on the CPU, built once per session into a temporary folder; LoRA files beside it."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TEST_STEPS = 3


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    from enchant_worker.generation.tiny_model import save_tiny_model

    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "tiny-sd")
    return folder


@pytest.fixture(scope="session")
def registry(models_dir):
    from enchant_worker.model_catalog import ModelRegistry

    return ModelRegistry.load(models_dir, None)


@pytest.fixture(scope="session")
def pipeline_cache(models_dir):
    from enchant_worker.generation.device import resolve_device
    from enchant_worker.generation.pipelines import PipelineCache

    return PipelineCache(resolve_device("cpu"), [models_dir])


@pytest.fixture()
def resident(pipeline_cache, registry):
    resident, _ = pipeline_cache.get(registry.get("tiny-sd"))
    resident.adapters.activate([])  # each test starts without LoRAs
    return resident


@pytest.fixture(scope="session")
def lora_files(models_dir, pipeline_cache, registry) -> dict[str, Path]:
    from enchant_worker.generation.tiny_model import save_random_lora

    resident, _ = pipeline_cache.get(registry.get("tiny-sd"))
    folder = models_dir / "loras"
    return {
        "ink": save_random_lora(resident.pipe, folder / "ink.safetensors", seed=1),
        "water": save_random_lora(resident.pipe, folder / "water.safetensors", seed=2),
    }


def make_params(prompt="a portrait of the queen", seeds=(7,), steps=TEST_STEPS, loras=(), **settings):
    from enchant_worker.generation.params import GenerationParams, validate_settings

    values = {"seeds": list(seeds), "steps": steps, "width": 64, "height": 64, **settings}
    return GenerationParams(prompt, "blurry", validate_settings(values), tuple(loras))
