"""`enchant-worker train` as a user runs it: queue, train with a worker process, watch; bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from enchant_worker.domain.jobs import JobStatus
from enchant_worker.queue import JobQueue

CLI = [sys.executable, "-m", "enchant_worker.cli"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    from enchant_worker.generation.tiny_model import save_tiny_model

    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "tiny-sd")
    return folder


@pytest.fixture
def env(cli_env, models_dir, tmp_path) -> dict[str, str]:
    return {
        **cli_env,
        "ENCHANT_MODELS_DIR": str(models_dir),
        "ENCHANT_STORAGE_DIR": str(tmp_path / "storage"),
        "ENCHANT_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "2",
    }


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "style"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (64, 64), (40 * i, 200 - 30 * i, 90)).save(folder / f"page{i}.png")
    (folder / "page0.txt").write_text("a harbour at night", encoding="utf-8")
    return folder


def cli(env, *args, timeout=120):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def worker_burst(env):
    out = cli(env, "worker", "--burst", "--types", "train_lora", timeout=300)
    assert out.returncode == 0, out.stderr


def test_train_no_wait_then_a_worker_makes_the_lora_ready(env, images, conn):
    out = cli(env, "train", "--name", "Harbour Ink", "--images", str(images), "--trigger", "hbink",
              "--steps", "3", "--rank", "4", "--no-wait")  # fmt: skip
    assert out.returncode == 0, out.stderr
    ids = json.loads(out.stdout)
    job = JobQueue(conn).get(ids["job_id"])
    assert job.status == JobStatus.PENDING and job.priority == 8
    [upload_id] = job.metadata["training_images"]  # the folder was copied into an upload in storage
    upload = conn.execute("SELECT folder, file_count FROM uploads WHERE id = %s", (upload_id,)).fetchone()
    assert (
        upload["file_count"] == 6
        and (Path(env["ENCHANT_STORAGE_DIR"]) / upload["folder"] / "page0.txt").is_file()
    )

    worker_burst(env)
    job = JobQueue(conn).get(ids["job_id"])
    assert job.status == JobStatus.COMPLETED, job.error_message
    row = conn.execute("SELECT * FROM lora_models WHERE id = %s", (ids["lora_model_id"],)).fetchone()
    assert row["status"] == "ready" and row["training_images_count"] == 5
    storage = Path(env["ENCHANT_STORAGE_DIR"])
    assert (storage / row["model_file_url"]).is_file()
    assert (storage / job.result["preview_image"]).is_file()


def test_train_shows_progress_until_the_lora_is_ready(env, images):
    watcher = subprocess.Popen([*CLI, "train", "--name", "Harbour", "--images", str(images), "--steps", "3",
                                "--rank", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        worker_burst(env)
        stdout, stderr = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, stderr
    assert "queued for training" in stderr and "completed" in stderr
    summary = json.loads(stdout)
    assert summary["status"] == "ready" and summary["steps"] == 3 and summary["preview_image"]


def test_ctrl_c_stops_watching_without_cancelling(env, images, conn):
    watcher = subprocess.Popen([*CLI, "train", "--name", "Harbour", "--images", str(images)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not conn.execute("SELECT 1 FROM processing_jobs").fetchone():
        assert time.monotonic() < deadline and watcher.poll() is None
        time.sleep(0.1)
    time.sleep(0.3)
    watcher.send_signal(signal.SIGINT)
    _, stderr = watcher.communicate(timeout=30)
    assert watcher.returncode == 130 and "the training goes on" in stderr and "Traceback" not in stderr
    assert conn.execute("SELECT status FROM processing_jobs").fetchone()["status"] == "pending"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rank", "0"], "rank: must be between 1 and 256"),
        (["--steps", "0"], "max_train_steps"),
        (["--base-model", "no-such-model"], "base_model: unknown base model 'no-such-model'"),
        (["--resolution", "100"], "resolution"),
    ],
)
def test_bad_options_are_refused_clearly_and_nothing_is_written(env, images, conn, args, expected):
    out = cli(env, "train", "--name", "Bad", "--images", str(images), *args)
    assert out.returncode == 2 and expected in out.stderr and "Traceback" not in out.stderr
    assert conn.execute("SELECT count(*) AS n FROM lora_models").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0
    assert not (Path(env["ENCHANT_STORAGE_DIR"]) / "training").exists()


def test_bad_image_folders_are_refused_clearly(env, images, tmp_path, conn):
    (images / "notes.pdf").write_bytes(b"%PDF-1.4")
    out = cli(env, "train", "--name", "Bad", "--images", str(images))
    assert out.returncode == 2 and "notes.pdf" in out.stderr and "not an image" in out.stderr
    few = tmp_path / "few"
    few.mkdir()
    Image.new("RGB", (64, 64)).save(few / "one.png")
    out = cli(env, "train", "--name", "Bad", "--images", str(few))
    assert out.returncode == 2 and "1 image(s) given; between 5 and 50" in out.stderr
    out = cli(env, "train", "--name", "Bad", "--images", str(tmp_path / "missing"))
    assert out.returncode == 2 and "is not a folder" in out.stderr
    assert "Traceback" not in out.stderr
    assert conn.execute("SELECT count(*) AS n FROM lora_models").fetchone()["n"] == 0
    assert not (Path(env["ENCHANT_STORAGE_DIR"]) / "training").exists()


@pytest.mark.slow
def test_a_killed_worker_s_training_resumes_from_its_last_checkpoint_in_another(env, images, conn):
    out = cli(env, "train", "--name", "Harbour", "--images", str(images), "--steps", "30", "--rank", "4",
              "--no-wait")  # fmt: skip
    job_id = json.loads(out.stdout)["job_id"]
    conn.execute("UPDATE processing_jobs SET metadata = metadata || '{\"checkpoint_every\": 5}' WHERE id = %s",
                 (job_id,))  # fmt: skip
    fast = {**env, "ENCHANT_LEASE_SECONDS": "2", "ENCHANT_HEARTBEAT_SECONDS": "0.3",
            "ENCHANT_REAP_INTERVAL_S": "0.5"}  # fmt: skip
    first = subprocess.Popen([*CLI, "worker", "--types", "train_lora"], env=fast,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    queue = JobQueue(conn)
    try:
        deadline = time.monotonic() + 120
        while (queue.get(job_id).progress or {}).get("step", 0) < 6:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL: no checkpoint on the way out
        first.wait()
    second = subprocess.Popen([*CLI, "worker", "--types", "train_lora"], env=fast,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while queue.get(job_id).status != JobStatus.COMPLETED:
            assert time.monotonic() < deadline and second.poll() is None
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    job = queue.get(job_id)
    assert job.result["steps"] == 30 and job.crashes == 1
    resumed = job.result["resumed_from_step"]
    assert resumed >= 5 and resumed % 5 == 0  # a periodic checkpoint: the killed run wrote no other
