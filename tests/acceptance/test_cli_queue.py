"""The CLI as a user runs it: worker processes, signals, crashes, bad input."""

import json
import shlex
import signal
import subprocess
import sys
import uuid

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.jobspecs.limits import MAX_JSON_DEPTH
from enchant_worker.queue import JobQueue
from tests.support.counting_handlers import SETUP_SQL
from tests.support.waiting import wait_for

CLI = [sys.executable, "-m", "enchant_worker.cli"]


def cli(env, *args, check=True):
    out = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"{args} failed ({out.returncode}): {out.stderr}")
    return out


def spawn_worker(env, *args):
    # WARNING: a worker logs two INFO lines per job, which would fill the unread stderr pipe and stall it
    return subprocess.Popen(
        [*CLI, "--log-level", "WARNING", "worker", "--handlers", "tests.support.counting_handlers", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


@pytest.mark.slow
def test_four_worker_processes_run_each_of_2000_jobs_exactly_once(cli_env, queue, conn):
    conn.execute(SETUP_SQL)
    ids = queue.enqueue_many([NewJob("count") for _ in range(2000)])
    workers = [spawn_worker(cli_env, "--types", "count", "--burst") for _ in range(4)]
    for w in workers:
        assert w.wait(timeout=180) == 0, w.stderr.read()
    counts = conn.execute("SELECT status, COUNT(*) AS n FROM processing_jobs GROUP BY status").fetchall()
    assert counts == [{"status": "completed", "n": 2000}]
    runs = conn.execute(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT job_id) AS jobs, COUNT(DISTINCT pid) AS pids FROM executions"
    ).fetchone()
    assert runs["n"] == 2000 and runs["jobs"] == 2000  # executions counted, not only statuses
    assert runs["pids"] >= 2  # the work was actually shared
    assert set(ids) == {r["job_id"] for r in conn.execute("SELECT job_id FROM executions")}


@pytest.mark.slow
def test_sigkill_mid_job_then_another_worker_completes_it(cli_env, queue, conn):
    env = dict(
        cli_env, ENCHANT_LEASE_SECONDS="2", ENCHANT_HEARTBEAT_SECONDS="0.5", ENCHANT_REAP_INTERVAL_S="0.5"
    )
    conn.execute(SETUP_SQL)
    job_id = queue.enqueue(NewJob("slow_count", {"seconds": 30}))
    victim = spawn_worker(env, "--types", "slow_count")
    wait_for(lambda: queue.get(job_id).status == JobStatus.PROCESSING)
    stale = queue.get(job_id)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    conn.execute("UPDATE processing_jobs SET metadata = '{\"seconds\": 0.1}' WHERE id = %s", (job_id,))
    rescuer = spawn_worker(env, "--types", "slow_count")
    try:
        wait_for(lambda: queue.get(job_id).status == JobStatus.COMPLETED, timeout=30)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(timeout=30)
    done = queue.get(job_id)
    assert done.attempts == 2 and done.crashes == 1
    assert done.result["pid"] == rescuer.pid
    # the dead worker's token no longer writes anything
    from enchant_worker.queue import Lease

    assert queue.complete(Lease(job_id, stale.lease_token), {"from": "ghost"}) is False
    assert queue.get(job_id).result["pid"] == rescuer.pid


def test_sigterm_hands_the_running_job_back(cli_env, queue):
    env = dict(cli_env, ENCHANT_SHUTDOWN_GRACE_S="0.5")
    job_id = queue.enqueue(NewJob("noop", {"seconds": 60}, max_attempts=1))
    worker = spawn_worker(env, "--types", "noop")
    wait_for(lambda: queue.get(job_id).status == JobStatus.PROCESSING)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    job = queue.get(job_id)
    assert job.status == JobStatus.PENDING and job.attempts == 0


def test_enqueue_list_show_cancel_retry(cli_env, queue):
    job_id = cli(
        cli_env,
        "enqueue",
        "noop",
        "--metadata",
        '{"seconds": 0}',
        "--priority",
        "2",
        "--idempotency-key",
        "k1",
    ).stdout.strip()
    again = cli(
        cli_env, "enqueue", "noop", "--metadata", '{"seconds": 0}', "--idempotency-key", "k1"
    ).stdout.strip()
    assert job_id == again and uuid.UUID(job_id)
    other = cli(cli_env, "enqueue", "noop", "--idempotency-key", "k1", check=False)  # another job, same key
    assert other.returncode != 0 and f"was used for job {job_id}" in other.stderr
    shown = json.loads(cli(cli_env, "job", job_id).stdout)
    assert shown["status"] == "pending" and shown["priority"] == 2
    assert job_id in cli(cli_env, "jobs", "--status", "pending").stdout
    assert "cancelled" in cli(cli_env, "cancel", job_id).stdout
    assert "queued again" in cli(cli_env, "retry", job_id).stdout
    cli(cli_env, "worker", "--burst", "--types", "noop")
    assert queue.get(job_id).status == JobStatus.COMPLETED


@pytest.mark.parametrize(
    "args, message",
    [
        (["enqueue", "noop", "--metadata", "{oops"], "--metadata is not valid JSON"),
        (["enqueue", "noop", "--metadata", "[1]"], "metadata: must be a JSON object"),
        (["enqueue", "noop", "--priority", "-3"], "priority: must be between 0"),
        (["enqueue", "noop", "--max-attempts", "0"], "max_attempts: must be between 1 and 1000"),
        (["enqueue", "noop", "--max-attempts", "99999999999"], "max_attempts: must be between 1 and 1000"),
        (["enqueue", "noop", "--metadata", '{"a": "\\u0000"}'], "may not contain NUL characters"),
        (["enqueue", "noop", "--metadata", '{"seconds": NaN}'], "seconds: must be a finite number"),
        (["enqueue", "noop", "--metadata", '{"seconds": "abc"}'], "seconds: must be a valid number"),
        (["jobs", "--limit", "-1"], "is not a whole number of at least 1"),
        (["worker", "--types", ",", "--burst"], "names no job type"),
        (["job", "not-a-uuid"], "is not a job id"),
        (["job", str(uuid.UUID(int=1))], "no job with id"),
        (["worker", "--types", "paint", "--burst"], "no handler for job type(s) paint"),
    ],
)
def test_bad_input_gets_a_clear_error_and_nothing_is_written(cli_env, queue, args, message):
    out = cli(cli_env, *args, check=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert queue.list() == []


DEEP = json.dumps(json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)))


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["enqueue", "noop", "--metadata", '{"a": "caf\\udce9"}'],  # a JSON escape for a lone surrogate
            "error: metadata.a: text contains a lone surrogate (\\udce9) at character 3",
        ),
        (
            [
                "enqueue",
                "noop",
                "--metadata",
                '{"a": "caf\udce9"}',
            ],  # a byte that is not UTF-8 in the argument
            "error: metadata.a: text contains a lone surrogate (\\udce9) at character 3",
        ),
        (
            ["enqueue", "noop", "--metadata", DEEP],
            "error: metadata"
            + "[0]" * MAX_JSON_DEPTH
            + f": nested deeper than the limit of {MAX_JSON_DEPTH} levels",
        ),
        (
            [
                "enqueue",
                "noop",
                "--metadata",
                "[" * 60_000 + "]" * 60_000,
            ],  # past the JSON parser's own recursion limit
            f"error: metadata: nested deeper than the limit of {MAX_JSON_DEPTH} levels",
        ),
        (
            ["enqueue", "noop", "--idempotency-key", "k" * 9000],
            "error: idempotency_key: 9000 characters, above the limit of 200",
        ),
        (["enqueue", "noop", "--idempotency-key", ""], "error: idempotency_key: must not be empty"),
        (
            ["jobs", "--limit", str(2**63)],
            "argument --limit: '9223372036854775808' is above the largest allowed, 9223372036854775807",
        ),
        (["jobs", "--limit", "0"], "argument --limit: '0' is not a whole number of at least 1"),
        (["jobs", "--limit", "9" * 9000], "is not a whole number of at least 1"),
    ],
)
def test_bad_input_is_one_line_on_stderr(cli_env, queue, args, message):
    out = cli(cli_env, *args, check=False)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert len(out.stderr) < 400  # a 9,000-character argument is not echoed back
    assert queue.list() == []


def test_jobs_into_a_closed_pipe_exits_quietly(cli_env, queue):
    """`enchant-worker jobs --json | head -1`: head stops reading; the CLI stops without a traceback."""
    queue.enqueue_many(
        [NewJob("noop", {"text": "x" * 1000}) for _ in range(300)]
    )  # far beyond a pipe's buffer
    command = " ".join(
        shlex.quote(a) for a in [*CLI, "--log-level", "WARNING", "jobs", "--json", "--limit", "1000"]
    )
    out = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout == "[\n"
    assert out.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"
    assert out.returncode == 141  # as for a process ended by SIGPIPE, so `set -o pipefail` still sees it


def test_unreachable_database_is_a_clear_message(cli_env):
    env = dict(cli_env, ENCHANT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    out = cli(env, "jobs", check=False)
    assert out.returncode == 2 and "cannot reach the database" in out.stderr and "Traceback" not in out.stderr


def test_worker_waits_for_the_database_instead_of_dying(cli_env):
    env = dict(
        cli_env, ENCHANT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", ENCHANT_DB_RETRY_MAX_S="60"
    )
    worker = subprocess.Popen([*CLI, "worker", "--types", "noop"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = iter(worker.stderr.readline, "")  # waits on the process's output, not on the clock
        assert any("retrying" in line for line in lines), "the worker never said it was retrying"
        assert worker.poll() is None  # still trying
    finally:
        worker.kill()
        worker.communicate(timeout=10)


def test_invalid_settings_are_refused_at_start(cli_env):
    out = cli(dict(cli_env, ENCHANT_LEASE_SECONDS="-5"), "jobs", check=False)
    assert out.returncode == 2 and "lease_seconds" in out.stderr and "Traceback" not in out.stderr
