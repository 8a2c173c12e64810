"""`generate` waiting in a terminal: the "no worker" hint only when no live worker serves the job type,
and the bar shows the stage, step/total and ETA the job reports."""

from __future__ import annotations

import pytest

from enchant_worker.cli import generation
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(generation, "NO_WORKER_HINT_AFTER_S", 0.0)
    monkeypatch.setattr(generation, "POLL_INTERVAL_S", 0.05)


def test_the_hint_only_when_no_live_worker_serves_the_type(conn, quick, capsys):
    queue = JobQueue(conn)
    job = queue.enqueue(NewJob("generate_image", {"prompt": "x"}))
    assert generation._wait(queue, job, timeout_s=0.2) is None
    assert "none is running for this job type" in capsys.readouterr().err
    queue.register_worker("busy", host="h", pid=1, job_types=["generate_image"], device={}, concurrency=1)
    queue.worker_heartbeat("busy", [])
    assert generation._wait(queue, job, timeout_s=0.2) is None
    assert "waiting for a worker" not in capsys.readouterr().err  # a busy worker will come to it
    queue.register_worker("other", host="h", pid=2, job_types=["noop"], device={}, concurrency=1)
    conn.execute("UPDATE workers SET heartbeat_at = NOW() - INTERVAL '5 minutes' WHERE id = 'busy'")
    assert generation._wait(queue, job, timeout_s=0.2) is None
    assert "none is running for this job type" in capsys.readouterr().err  # a silent worker does not count


def test_the_bar_shows_the_stage():
    line = generation._bar(40, {"stage": "denoising", "step": 8, "total": 20, "eta_s": 3.2})
    assert line.endswith(" 40% denoising step 8/20 ETA 3s")
    assert generation._bar(0, None).endswith("  0%")
