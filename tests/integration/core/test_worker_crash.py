"""Chaos: worker processes SIGKILLed while they hold prefetched batches. Attempts are spent by running,
not by being held: with max_attempts=1, no job fails that never ran."""

import os
import signal
import subprocess
import sys

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from tests.support.counting_handlers import SETUP_SQL
from tests.support.waiting import wait_for

JOBS = 1500
KILLS = 3
CONCURRENCY = 2


def start_worker(cli_env):
    env = dict(
        cli_env,
        ENCHANT_LEASE_SECONDS="2",
        ENCHANT_HEARTBEAT_SECONDS="0.5",
        ENCHANT_REAP_INTERVAL_S="0.5",
        ENCHANT_POLL_INTERVAL_S="0.5",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "enchant_worker.cli",
            "--log-level",
            "WARNING",
            "worker",
            "--types",
            "poison",
            "--handlers",
            "tests.support.counting_handlers",
            "--concurrency",
            str(CONCURRENCY),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def held_unstarted(conn, pid):
    """Jobs the worker process `pid` holds in prefetched batches but has not started."""
    return conn.execute(
        "SELECT count(*) AS n FROM processing_jobs WHERE leased_by LIKE %s AND NOT run_started",
        (f"%:{pid}:%",),
    ).fetchone()["n"]


def ran_by(conn, pid):
    return conn.execute("SELECT count(*) AS n FROM executions WHERE pid = %s", (pid,)).fetchone()["n"]


def test_sigkilled_workers_fail_no_job_that_never_ran(conn, cli_env):
    conn.execute(SETUP_SQL)
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("poison", max_attempts=1) for _ in range(JOBS)])
    for _ in range(KILLS):
        victim = start_worker(cli_env)  # its heartbeat also reaps the leases of the one killed before
        try:
            # Kill it in the middle of its work: it has run jobs and holds a prefetched batch.
            wait_for(
                lambda: ran_by(conn, victim.pid) >= 20 and held_unstarted(conn, victim.pid) > 0,  # noqa: B023
                timeout=60,
                what="the worker to hold a prefetched batch",
            )
        finally:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=30)
    drainer = start_worker(cli_env)
    try:
        wait_for(
            lambda: (
                conn.execute(
                    "SELECT count(*) AS n FROM processing_jobs WHERE status IN ('pending', 'processing')"
                ).fetchone()["n"]
                == 0
            ),
            timeout=120,
            what="every job to finish",
        )
    finally:
        drainer.send_signal(signal.SIGTERM)
        drainer.wait(timeout=60)

    rows = conn.execute("""
        SELECT j.id, j.status, j.attempts, j.crashes, j.unstarted_reaps, j.error_message,
               (SELECT count(*) FROM executions e WHERE e.job_id = j.id) AS runs
        FROM processing_jobs j""").fetchall()
    assert len(rows) == JOBS
    failed = [r for r in rows if r["status"] == "failed"]
    # No job that was only held fails. A kill can land between a worker recording that a job starts and
    # the handler's first write (here, its row in `executions`): at most one such job per slot and kill.
    never_ran = [r for r in failed if r["runs"] == 0]
    assert len(never_ran) <= KILLS * CONCURRENCY, f"{len(never_ran)} jobs failed that never ran"
    assert all(
        r["crashes"] == 1 and "while running it (attempt 1 of 1)" in r["error_message"] for r in failed
    )
    assert {r["status"] for r in rows if r["status"] != "failed"} == {"completed"}
    # The scenario happened: jobs were taken back from dead workers without having started.
    assert sum(r["unstarted_reaps"] for r in rows) > 0
