"""Waiting on a job in a terminal (`generate`, `train`, `export` share `cli.progress`): the "no worker" hint
only when no live worker serves the job type, and one line with the stage, step/total, loss and ETA."""

from __future__ import annotations

import io

import pytest

from enchant_worker.cli import progress
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(progress, "NO_WORKER_HINT_AFTER_S", 0.0)
    monkeypatch.setattr(progress, "POLL_INTERVAL_S", 0.05)


def test_the_hint_only_when_no_live_worker_serves_the_type(conn, quick, capsys):
    queue = JobQueue(conn)
    job = queue.enqueue(NewJob("generate_image", {"prompt": "x"}))
    assert progress.follow(queue, job, timeout_s=0.2) is None
    assert "none is running for this job type" in capsys.readouterr().err
    queue.register_worker("busy", host="h", pid=1, job_types=["generate_image"], device={}, concurrency=1)
    queue.worker_heartbeat("busy", [])
    assert progress.follow(queue, job, timeout_s=0.2) is None
    assert "waiting for a worker" not in capsys.readouterr().err  # a busy worker will come to it
    queue.register_worker("other", host="h", pid=2, job_types=["noop"], device={}, concurrency=1)
    conn.execute("UPDATE workers SET heartbeat_at = NOW() - INTERVAL '5 minutes' WHERE id = 'busy'")
    assert progress.follow(queue, job, timeout_s=0.2) is None
    assert "none is running for this job type" in capsys.readouterr().err  # a silent worker does not count


def test_one_line_for_generation_and_training():
    line = progress.progress_line(
        "processing", 40, {"stage": "denoising", "step": 8, "total": 20, "eta_s": 3.2}
    )
    assert line.endswith(" 40% denoising step 8/20 ETA 0:03") and line.startswith("[" + "#" * 12 + ".")
    assert progress.progress_line("processing", 0, None).endswith("  0%")
    trained = {"stage": "training", "step": 12, "total": 40, "loss": 0.12345, "s_per_step": 1.2, "eta_s": 34}
    assert progress.progress_line("processing", 27, trained).endswith(
        " 27% training step 12/40 loss 0.1235 1.20 s/step ETA 0:34"
    )
    assert progress.progress_line("pending", 0, {"step": 12, "total": 40}) == "queued (paused at step 12/40)"
    assert progress.progress_line("completed", 100, trained) == "completed"


def test_outside_a_terminal_only_stage_changes_and_quarters_are_printed():
    out = io.StringIO()
    display = progress.Display(out)
    for step in range(1, 21):
        display.show("processing", step * 5, {"stage": "denoising", "step": step, "total": 20})
    display.show("processing", 100, {"stage": "decoding"})
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1] for line in lines] == [
        "  5% denoising step 1/20",
        " 25% denoising step 5/20",
        " 50% denoising step 10/20",
        " 75% denoising step 15/20",
        "100% denoising step 20/20",
        "100% decoding",
    ]
