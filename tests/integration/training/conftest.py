"""Fixtures for train_lora against a real Postgres: the tiny model in a models folder of its own (built
once per session), training images, settings pointing at both, and a worker in a thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from enchant_worker.domain.jobs import NewJob  # noqa: E402
from enchant_worker.generation.tiny_model import save_tiny_model  # noqa: E402
from enchant_worker.queue import JobQueue  # noqa: E402
from tests.support.workers import WorkerThreads  # noqa: E402

IMAGE_SIZES = [(64, 64), (80, 64), (64, 96), (72, 72), (48, 48)]  # the last is below 64px: flagged


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "tiny-sd")
    return folder


def write_images(folder: Path, sizes=IMAGE_SIZES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for i, (w, h) in enumerate(sizes):
        base = torch.rand(3, 4, 4, generator=gen)  # smooth random colours, different per image
        pixels = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]
        Image.fromarray((pixels.permute(1, 2, 0) * 255).to(torch.uint8).numpy()).save(folder / f"img{i}.png")
    (folder / "img0.txt").write_text("a red castle at dusk", encoding="utf-8")
    return folder


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "upload")


@pytest.fixture
def train_settings(settings, models_dir, tmp_path):
    # The tests' image folders are under tmp_path: the CLI and admins may train from ENCHANT_TRAINING_DIRS.
    return settings.model_copy(
        update={
            "models_dir": models_dir,
            "storage_dir": tmp_path / "storage",
            "device": "cpu",
            "training_dirs": [tmp_path],
        }
    )


@pytest.fixture
def request_for():
    def make(images: Path, **overrides):
        values = dict(
            name="Ink Wash",
            training_images=[str(images)],
            base_model="tiny-sd",
            trigger_words=["inkwash"],
            resolution=64,
            rank=4,
            learning_rate=1e-3,
            batch_size=1,
            max_train_steps=4,
            checkpoint_every=2,
            mixed_precision="no",
            seed=7,
        )
        values.update(overrides)
        return values

    return make


def train_lora_job(lora_id, request: dict) -> NewJob:
    """A train_lora job as a web app inserts it: a row made first, the job about it, no checks."""
    return NewJob(
        "train_lora",
        {**request, "lora_model_id": str(lora_id)},
        priority=8,
        entity_type="lora_model",
        entity_id=lora_id,
    )


@pytest.fixture
def queue(conn) -> JobQueue:
    return JobQueue(conn)


@pytest.fixture
def start_worker(db, train_settings):
    """Start a Worker in a thread (stopped at once at teardown); returns (worker, thread)."""
    workers = WorkerThreads(db, train_settings)
    yield lambda *, types=("train_lora",), **kw: workers.start(types=types, **kw)
    workers.stop_all()
    from enchant_worker.handlers.generate_image import forget_providers

    forget_providers()
