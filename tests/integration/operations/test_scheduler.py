"""Leader election and the scheduler: one leader among many, a fast takeover, no tick run twice."""

from __future__ import annotations

import re
import signal
import threading
import time
from datetime import UTC, datetime

from enchant_worker.scheduling.leader import LeaderElection, current_leader
from enchant_worker.scheduling.schedule import ScheduleConfig, parse_every
from enchant_worker.scheduling.service import SchedulerService
from enchant_worker.scheduling.tasks import TASKS
from tests.support.waiting import wait_for

from .conftest import spawn, stop

RAN = re.compile(r"ran (\S+) tick (\S+) by (\S+):")


def test_one_leader_in_process_and_takeover_when_its_session_dies(db, conn):
    events = []
    a = LeaderElection(
        db.url,
        "enchant-scheduler:test:a",
        check_s=0.1,
        on_elected=lambda: events.append("a+"),
        on_deposed=lambda: events.append("a-"),
    )
    b = LeaderElection(
        db.url,
        "enchant-scheduler:test:b",
        check_s=0.1,
        on_elected=lambda: events.append("b+"),
        on_deposed=lambda: events.append("b-"),
    )
    a.start()
    assert a.wait_until_leader(5)
    b.start()
    try:
        time.sleep(0.5)
        assert a.is_leader and not b.is_leader
        assert current_leader(conn) == "enchant-scheduler:test:a"
        # The leader's session is killed (as when its host vanishes): it steps down, b takes over.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            ("enchant-scheduler:test:a",),
        )
        assert b.wait_until_leader(5)
        wait_for(lambda: not a.is_leader, 5, "a to notice it lost the lock")
        assert current_leader(conn) == "enchant-scheduler:test:b"
        time.sleep(0.5)
        assert b.is_leader and not a.is_leader  # a reconnects as a follower
        # A clean stop hands leadership back at once.
        b.stop()
        assert a.wait_until_leader(5)
    finally:
        a.stop()
        b.stop()
    # b may lead before a notices its session is gone: the tick claims cover that moment.
    assert events[0] == "a+" and set(events[1:3]) == {"a-", "b+"} and events.count("b-") == 1


def test_service_runs_ticks_only_as_leader_and_each_tick_once(db, settings, conn):
    config = ScheduleConfig({"reap_leases": parse_every("0.3s")}, [], None)
    first = SchedulerService(db, settings, config=config, identity="enchant-scheduler:test:first")
    second = SchedulerService(db, settings, config=config, identity="enchant-scheduler:test:second")
    first.start()
    wait_for(lambda: first.is_leader, 5, "the first scheduler to lead")
    second.start()
    try:
        time.sleep(1.5)
        assert not second.is_leader
        runs = conn.execute(
            "SELECT ran_by, tick FROM maintenance_runs WHERE task = 'reap_leases' ORDER BY tick"
        ).fetchall()
        assert len(runs) >= 3 and {r["ran_by"] for r in runs} == {first.identity}
        first.stop()
        wait_for(lambda: second.is_leader, 5, "the second scheduler to take over")
        time.sleep(1.0)
    finally:
        first.stop()
        second.stop()
    runs = conn.execute(
        "SELECT ran_by, tick, status FROM maintenance_runs WHERE task = 'reap_leases' ORDER BY tick"
    ).fetchall()
    assert {r["ran_by"] for r in runs} == {first.identity, second.identity}
    assert all(r["status"] == "completed" for r in runs)
    ticks = [r["tick"] for r in runs]
    assert len(ticks) == len(set(ticks))


def _identity_pid(identity: str | None) -> int | None:
    return int(identity.split(":")[2]) if identity else None


def test_two_scheduler_processes_one_leader_and_takeover_after_kill(tmp_path, ops_env, conn):
    schedule = tmp_path / "schedule.toml"
    schedule.write_text("""
[tasks.reap_leases]
every = "0.5s"
[tasks.refresh_statistics]
every = "1h"
[tasks.create_partitions]
enabled = false
[tasks.archive_jobs]
enabled = false
[tasks.record_metrics]
enabled = false
[jobs.tick]
every = "1s"
job_type = "noop"
""")
    env = {**ops_env, "ENCHANT_SCHEDULE_FILE": str(schedule)}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    # DEBUG: each task run is logged at DEBUG ("ran TASK tick T by ME"), which this test reads
    procs = [spawn("--log-level", "DEBUG", "scheduler", env=env, log=log) for log in logs]
    try:
        leader = wait_for(lambda: current_leader(conn), 20, "a leader")
        # Exactly one leader, and it stays the same while both live.
        leader_pid = _identity_pid(leader)
        assert leader_pid in {p.pid for p in procs}
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert _identity_pid(current_leader(conn)) == leader_pid
            time.sleep(0.1)
        (leading,) = [p for p in procs if p.pid == leader_pid]
        (following,) = [p for p in procs if p.pid != leader_pid]
        before = conn.execute("SELECT DISTINCT ran_by FROM maintenance_runs").fetchall()
        assert [r["ran_by"] for r in before] == [leader]

        leading.send_signal(signal.SIGKILL)
        leading.wait(10)
        killed_at = time.monotonic()
        new_leader = wait_for(
            lambda: _identity_pid(current_leader(conn)) == following.pid and current_leader(conn),
            10,
            "the follower to take over",
        )
        takeover_s = time.monotonic() - killed_at
        assert takeover_s < 3, f"takeover took {takeover_s:.1f}s"
        wait_for(
            lambda: conn.execute(
                "SELECT 1 FROM maintenance_runs WHERE ran_by = %s AND task = 'job:tick'", (new_leader,)
            ).fetchone(),
            10,
            "the new leader to enqueue a tick",
        )
        time.sleep(1.5)
    finally:
        for proc in procs:
            stop(proc)
    assert following.returncode == 0, logs[procs.index(following)].read_text()[-2000:]

    # Nothing ran twice: the runs logged by the two processes are disjoint.
    ran = [set(RAN.findall(log.read_text())) for log in logs]
    a_runs = {(task, tick) for task, tick, _ in ran[0]}
    b_runs = {(task, tick) for task, tick, _ in ran[1]}
    assert a_runs and b_runs and not (a_runs & b_runs)
    # The hourly task ran once although both processes became leader.
    assert sum(task == "refresh_statistics" for task, _ in a_runs | b_runs) == 1
    # The recurring job: one job per tick, ticks one second apart.
    jobs = conn.execute(
        "SELECT idempotency_key FROM processing_jobs WHERE job_type = 'noop' ORDER BY created_at"
    ).fetchall()
    ticks = sorted(datetime.fromisoformat(j["idempotency_key"].split(":", 2)[2]) for j in jobs)
    assert len(ticks) >= 4 and len(ticks) == len(set(ticks))
    assert all((b - a).total_seconds() >= 1 for a, b in zip(ticks, ticks[1:], strict=False))
    assert ticks[-1] <= datetime.now(UTC)


def test_start_in_thread_and_stop_for_serve(db, settings, conn):
    """What `serve` uses: start() returns at once; stop() returns promptly and frees the lock."""
    config = ScheduleConfig({name: parse_every("1h") for name in TASKS}, [], None)
    service = SchedulerService(db, settings, config=config, identity="enchant-scheduler:test:serve")
    started = time.monotonic()
    service.start()
    assert time.monotonic() - started < 10  # it returns: the scheduler runs in its thread until stop()
    wait_for(lambda: service.is_leader, 5, "leadership")
    wait_for(
        lambda: (
            conn.execute("SELECT count(*) AS n FROM maintenance_runs WHERE status = 'completed'").fetchone()[
                "n"
            ]
            == len(TASKS)
        ),
        20,
        "each task's first run",
    )
    stopper = threading.Thread(target=service.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()
    assert current_leader(conn) is None
