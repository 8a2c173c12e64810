"""Fixtures for training tests: the project's tiny SD model (built once per session) and small images."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from enchant_worker.generation.tiny_model import save_tiny_model  # noqa: E402
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec  # noqa: E402

IMAGE_SIZES = [(64, 64), (80, 64), (64, 96), (72, 72), (48, 48)]  # the last is below a 64px resolution


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sd")


def _write_images(folder: Path, sizes=IMAGE_SIZES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for i, (w, h) in enumerate(sizes):
        # smooth random colours: something a VAE can encode, different per image
        base = torch.rand(3, 4, 4, generator=gen)
        pixels = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]
        data = (pixels.permute(1, 2, 0) * 255).to(torch.uint8).numpy()
        Image.fromarray(data).save(folder / f"img{i}.png")
    (folder / "img0.txt").write_text("a red castle at dusk", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def write_images():
    return _write_images


@pytest.fixture
def images(tmp_path) -> Path:
    return _write_images(tmp_path / "upload")


@pytest.fixture(scope="session")
def make_spec():
    return _make_spec


def _make_spec(images: Path, **overrides) -> LoRATrainingSpec:
    values = dict(
        name="Ink Wash",
        training_images=[str(images)],
        base_model="tiny-sd",
        trigger_words=["inkwash"],
        resolution=64,
        rank=4,
        alpha=8,
        learning_rate=1e-3,
        batch_size=2,
        max_train_steps=4,
        checkpoint_every=2,
        mixed_precision="no",
        seed=7,
    )
    values.update(overrides)
    return LoRATrainingSpec(**values)
