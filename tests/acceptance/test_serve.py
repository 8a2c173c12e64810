"""`serve`: API, worker and scheduler in one process, stopped cleanly by SIGTERM."""

import signal
import subprocess
import sys
import time

import httpx

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.queue import JobQueue
from tests.support.waiting import free_port


def test_serve_answers_http_runs_jobs_and_stops_on_sigterm(cli_env, conn):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "enchant_worker.cli", "serve", "--port", str(port), "--types", "noop"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
        queue = JobQueue(conn)
        job_id = queue.enqueue(NewJob("noop"))
        deadline = time.monotonic() + 10
        while queue.get(job_id).status != JobStatus.COMPLETED:
            assert time.monotonic() < deadline, "the in-process worker did not run the job"
            time.sleep(0.05)
        leader = conn.execute(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
        assert leader["n"] >= 1  # the scheduler holds leadership
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
