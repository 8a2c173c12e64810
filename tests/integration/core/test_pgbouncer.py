"""Behind PgBouncer (Debian's `pgbouncer`, started here on a free port): pool modes detected at start-up,
migrations and LISTEN only through a session, a lease-row leader, polling workers, a pooler restart and
the connection budget. Skips when the binary is missing (`.ci/run` installs it)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from enchant_worker.config import Settings
from enchant_worker.db import pgbouncer
from enchant_worker.db.pooler import detect
from enchant_worker.db.setup import connect_database, migrate_database
from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.errors import ConfigurationError, DatabaseUnavailable, MigrationError
from enchant_worker.queue import JobQueue
from enchant_worker.scheduling.leader import LeaderElection, current_leader
from tests.support.counting_handlers import SETUP_SQL
from tests.support.waiting import free_port, wait_for
from tests.support.workers import WorkerThreads

pytestmark = pytest.mark.skipif(
    pgbouncer.binary() is None,
    reason="pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run does)",
)


@pytest.fixture
def bouncers(db_url) -> Iterator:
    started = []

    def start(mode: str = "transaction", **kwargs) -> pgbouncer.PgBouncer:
        b = pgbouncer.PgBouncer(db_url, mode=mode, **kwargs).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.__exit__(None, None, None)


def dbname(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def pooled_settings(settings: Settings, url: str, **update) -> Settings:
    return settings.model_copy(update={"database_url": url, "poll_interval_s": 0.3, **update})


# -- start-up detection -----------------------------------------------------------------------------


def test_each_pool_mode_is_told_apart(db_url, bouncers):
    assert detect(db_url).mode == "direct"
    for mode in ("session", "transaction", "statement"):
        assert detect(bouncers(mode).url(dbname(db_url))).mode == mode


def test_statement_mode_is_refused_at_start_up_with_the_fix(db_url, bouncers, settings):
    url = bouncers("statement").url(dbname(db_url))
    with pytest.raises(ConfigurationError, match=r"statement mode.*pool_mode = transaction"):
        connect_database(pooled_settings(settings, url))


def test_session_mode_works_and_is_explained(db_url, bouncers, settings, caplog):
    url = bouncers("session").url(dbname(db_url))
    with caplog.at_level(logging.WARNING):
        db = connect_database(pooled_settings(settings, url))
    assert not db.pooled and db.session_url == url  # LISTEN and locks work in session mode
    assert any("session mode" in r.message and "saves nothing" in r.message for r in caplog.records)


def test_transaction_mode_without_direct_url_refuses_pending_migrations_and_says_how(
    empty_db_url, bouncers, settings
):
    url = bouncers("transaction").url(dbname(empty_db_url))
    s = pooled_settings(settings, url)
    db = connect_database(s)
    assert db.pooled and db.session_url is None
    with pytest.raises(MigrationError, match=r"pending.*ENCHANT_DIRECT_DATABASE_URL"):
        migrate_database(db, s)
    # With the direct URL they run over the server's session; afterwards nothing is pending either way.
    s2 = s.model_copy(update={"direct_database_url": empty_db_url})
    direct = connect_database(s2)
    assert direct.pooled and direct.session_url == empty_db_url
    assert migrate_database(direct, s2)
    assert migrate_database(db, s) == []


def test_direct_url_that_is_a_pooler_is_refused(db_url, bouncers, settings):
    url = bouncers("transaction").url(dbname(db_url))
    with pytest.raises(ConfigurationError, match="must name the Postgres server itself"):
        connect_database(pooled_settings(settings, url, direct_database_url=url))


def test_unreachable_direct_url_one_warning_and_the_worker_polls(db_url, bouncers, settings, caplog, conn):
    url = bouncers("transaction").url(dbname(db_url))
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/{dbname(db_url)}"
    s = pooled_settings(settings, url, direct_database_url=dead)
    with caplog.at_level(logging.WARNING):
        db = connect_database(s)
        assert db.pooled and db.session_url is None
        workers = WorkerThreads(db, s)
        workers.start(types=["noop"])
        queue = JobQueue(conn)
        ids = queue.enqueue_many([NewJob("noop") for _ in range(5)])
        try:
            wait_for(
                lambda: all(queue.get(i).status == JobStatus.COMPLETED for i in ids),
                timeout=30,
                what="the polling worker to run the jobs",
            )
        finally:
            workers.stop_all()
    warnings = [r for r in caplog.records if "ENCHANT_DIRECT_DATABASE_URL" in r.message]
    assert len(warnings) == 1 and "poll" in warnings[0].message
    assert not [r for r in caplog.records if "listener" in r.message]  # no listener was even tried


def test_connection_limit_reached_names_the_budget(db_url, settings, bouncers):
    role = f"enchant_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
    try:
        url = psycopg.conninfo.make_conninfo(db_url, user=role)
        with psycopg.connect(url):  # the only connection the role may have
            with pytest.raises(
                DatabaseUnavailable, match=r"too many connections.*connection budget.*PgBouncer"
            ):
                connect_database(settings.model_copy(update={"database_url": url}))
        # The pooler's own limit reads the same way.
        b = bouncers("transaction", max_client_conn=1)
        with psycopg.connect(b.url(dbname(db_url))):
            with pytest.raises(DatabaseUnavailable, match=r"no more connections allowed.*connection budget"):
                connect_database(settings.model_copy(update={"database_url": b.url(dbname(db_url))}))
    finally:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")


# -- leader election through the lease row ---------------------------------------------------------


def test_lease_row_elects_one_leader_and_hands_over(db_url, bouncers, conn):
    url = bouncers("transaction").url(dbname(db_url))
    a = LeaderElection(url, "enchant-scheduler:test:a", check_s=0.1, lease_only=True)
    b = LeaderElection(url, "enchant-scheduler:test:b", check_s=0.1, lease_only=True)
    c = LeaderElection(db_url, "enchant-scheduler:test:c", check_s=0.1)  # a direct one in the same fleet
    for e in (a, b, c):
        e.start()
    try:
        wait_for(lambda: sum(e.is_leader for e in (a, b, c)) == 1, what="one leader")
        for _ in range(10):  # and only ever one
            assert sum(e.is_leader for e in (a, b, c)) == 1
            time.sleep(0.05)
        first = next(e for e in (a, b, c) if e.is_leader)
        assert current_leader(conn) == first.identity
        first.stop()  # a clean stop hands over at once
        rest = [e for e in (a, b, c) if e is not first]
        wait_for(lambda: sum(e.is_leader for e in rest) == 1, timeout=10, what="a new leader")
        # A leader that stops renewing (stalled, host gone) is replaced once its lease expires.
        second = next(e for e in rest if e.is_leader)
        second._stop.set()
        second._thread.join(5)
        second._conn = None  # as if its host vanished: the row is neither renewed nor released
        other = next(e for e in rest if e is not second)
        wait_for(lambda: other.is_leader, timeout=10, what="takeover of the expired lease")
    finally:
        for e in (a, b, c):
            e.stop()


# -- a worker behind the pooler ---------------------------------------------------------------------


def _count_runs(conn) -> dict:
    return {
        r["job_id"]: r["n"]
        for r in conn.execute("SELECT job_id, count(*) AS n FROM executions GROUP BY job_id").fetchall()
    }


def test_worker_through_pooler_runs_cancels_and_survives_a_pooler_restart(db_url, bouncers, settings, conn):
    conn.execute(SETUP_SQL)
    bouncer = bouncers("transaction", pool_size=4)
    s = pooled_settings(settings, bouncer.url(dbname(db_url)))
    db = connect_database(s)
    assert db.pooled and db.session_url is None
    workers = WorkerThreads(db, s)
    workers.start(types=["count", "noop"], module="tests.support.counting_handlers", concurrency=2)
    queue = JobQueue(conn)
    try:
        first = queue.enqueue_many([NewJob("count") for _ in range(20)])
        wait_for(
            lambda: all(queue.get(i).status == JobStatus.COMPLETED for i in first),
            timeout=30,
            what="jobs through the pooler",
        )
        # Cancel a running job: no LISTEN, the heartbeat's answer carries the request.
        slow = queue.enqueue(NewJob("noop", metadata={"seconds": 30}))
        wait_for(lambda: queue.get(slow).status == JobStatus.PROCESSING, what="the slow job to start")
        queue.cancel(slow)
        wait_for(lambda: queue.get(slow).status == JobStatus.CANCELLED, timeout=15, what="the cancel")
        # The pooler restarts while jobs flow: every job runs exactly once.
        more = queue.enqueue_many([NewJob("count") for _ in range(200)])
        wait_for(lambda: len(_count_runs(conn)) > len(first) + 20, what="jobs to flow")
        bouncer.restart(down_s=1.0)
        wait_for(
            lambda: all(queue.get(i).status == JobStatus.COMPLETED for i in more),
            timeout=90,
            what="every job after the restart",
        )
        # No session state was left on the server connections the pool shares: every one of them (the
        # pool holds 4; 4 clients in open transactions hold them all) has no prepared statement and the
        # default planner settings (the worker's session SET is skipped behind a pooler).
        clients = [
            psycopg.connect(bouncer.url(dbname(db_url)), autocommit=True, prepare_threshold=None)
            for _ in range(4)
        ]
        try:
            for c in clients:
                c.execute("BEGIN")
                state = c.execute(
                    "SELECT pg_backend_pid(), current_setting('enable_bitmapscan'), "
                    "(SELECT count(*) FROM pg_prepared_statements)"
                ).fetchone()
                assert state[1:] == ("on", 0), state
        finally:
            for c in clients:
                c.close()
    finally:
        workers.stop_all()
    runs = _count_runs(conn)
    assert all(runs[i] == 1 for i in [*first, *more]), "a job ran twice or not at all"
    assert not conn.execute("SELECT 1 FROM pg_stat_activity WHERE query ILIKE 'LISTEN%%'").fetchall()


def _spawn(args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "enchant_worker.cli", "--log-level", "WARNING", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_worker_scheduler_and_api_through_the_pooler(db_url, bouncers, cli_env, conn, tmp_path):
    """`serve` (API + worker + scheduler) and a second worker process, all through PgBouncer in
    transaction mode without a direct URL: jobs run, a killed worker's job comes back, a pooler restart
    loses nothing and runs nothing twice."""
    conn.execute(SETUP_SQL)
    bouncer = bouncers("transaction", pool_size=6)
    env = dict(
        cli_env,
        ENCHANT_DATABASE_URL=bouncer.url(dbname(db_url)),
        ENCHANT_LEASE_SECONDS="2",
        ENCHANT_HEARTBEAT_SECONDS="0.3",
        ENCHANT_REAP_INTERVAL_S="0.5",
        ENCHANT_POLL_INTERVAL_S="0.3",
        ENCHANT_LEADER_CHECK_S="0.2",
        ENCHANT_SHUTDOWN_GRACE_S="1",
    )
    env.pop("ENCHANT_DIRECT_DATABASE_URL", None)
    port = free_port()
    log = (tmp_path / "procs.log").open("w")
    serve = _spawn(
        ["serve", "--port", str(port), "--types", "count", "--handlers", "tests.support.counting_handlers"],
        env,
        log,
    )
    victim = _spawn(
        ["worker", "--types", "slow_count", "--handlers", "tests.support.counting_handlers"], env, log
    )
    queue = JobQueue(conn)
    rescuer = None
    try:

        def healthy():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, what="serve to answer through the pooler")
        wait_for(lambda: current_leader(conn), timeout=30, what="the scheduler to lead through the lease row")
        assert conn.execute("SELECT via_lock FROM scheduler_lease").fetchone()["via_lock"] is False
        # A crashed worker's job comes back and is run by the other one.
        job = queue.enqueue(NewJob("slow_count", metadata={"seconds": 1}))
        wait_for(lambda: queue.get(job).status == JobStatus.PROCESSING, timeout=30, what="the job to start")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        rescuer = _spawn(
            ["worker", "--types", "slow_count", "--handlers", "tests.support.counting_handlers"], env, log
        )
        wait_for(
            lambda: queue.get(job).status == JobStatus.COMPLETED,
            timeout=60,
            what="the killed worker's job to come back and complete",
        )
        # Jobs through the pooler, restarted in the middle.
        ids = queue.enqueue_many([NewJob("count") for _ in range(100)])
        wait_for(lambda: len(_count_runs(conn)) > 10, what="jobs to flow")
        bouncer.restart(down_s=1.0)
        wait_for(
            lambda: all(queue.get(i).status == JobStatus.COMPLETED for i in ids),
            timeout=90,
            what="every job after the pooler restart",
        )
        assert healthy()  # the API's pool reconnected too
        runs = _count_runs(conn)
        assert all(runs[i] == 1 for i in ids), "a job ran twice or not at all"
    finally:
        procs = [p for p in (serve, victim, rescuer) if p is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
    text = (tmp_path / "procs.log").read_text()
    # A handler whose own connection the restart broke fails that attempt (logged with its traceback) and
    # is retried; no thread of the worker, scheduler or API may die.
    assert "Exception in thread" not in text and "slot failed" not in text, text[-3000:]
    assert serve.returncode == 0, text[-3000:]


def test_the_queue_tests_pass_through_the_pooler(tmp_path):
    """tests/integration/core/test_queue.py again, every statement through PgBouncer in transaction mode."""
    env = dict(os.environ, ENCHANT_TEST_POOLER="transaction")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "tests/integration/core/test_queue.py",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_the_idle_poll_is_one_index_only_probe(conn):
    from enchant_worker.sql import q

    conn.execute(
        "INSERT INTO processing_jobs (job_type, metadata, status) "
        "SELECT 'noop', '{}', 'completed' FROM generate_series(1, 2000)"
    )
    conn.execute("VACUUM ANALYZE processing_jobs")
    plan = "\n".join(
        r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + q("runnable_probe"), {"types": ["noop"]})
    )
    assert "Index Only Scan using idx_processing_jobs_runnable" in plan, plan


def test_cli_explains_statement_mode_and_pooled_migrations(empty_db_url, db_url, bouncers, cli_env):
    run = lambda *args, url: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "enchant_worker.cli", *args],
        env=dict(cli_env, ENCHANT_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    worker = run("worker", "--types", "noop", "--burst", url=bouncers("statement").url(dbname(db_url)))
    assert worker.returncode != 0 and "statement mode" in worker.stderr and "Traceback" not in worker.stderr
    migrate = run("migrate", url=bouncers("transaction").url(dbname(empty_db_url)))
    assert migrate.returncode != 0 and "ENCHANT_DIRECT_DATABASE_URL" in migrate.stderr, migrate.stderr
    assert "Traceback" not in migrate.stderr
