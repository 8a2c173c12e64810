"""The connection budget on one host: each worker's threads share one bookkeeping connection; the workers
share one LISTEN session, relayed over Unix datagram sockets; when its holder dies another takes over; a
folder it cannot trust means the worker's own LISTEN."""

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from enchant_worker.db.connection import Database
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from enchant_worker.worker.listener import Listener
from tests.support.waiting import wait_for
from tests.support.workers import WorkerThreads

# A holder in a process of its own, so the test can kill it the hard way.
HOLDER = """
import sys, threading, time
from pathlib import Path
from enchant_worker.db.connection import Database
from enchant_worker.worker.listener import Listener
with Listener(Database(sys.argv[1]), ["noop"], lambda: None, lambda _: None, host_dir=Path(sys.argv[2])) as li:
    print("leading" if li.leading else "following", flush=True)
    threading.Event().wait()
"""


class Woken:
    """One worker's view: its wake-ups and the cancellations it heard of."""

    def __init__(self) -> None:
        self.work = threading.Event()
        self.cancels: list[uuid.UUID] = []

    def listener(self, db: Database, host_dir: Path, types=("noop",)) -> Listener:
        return Listener(db, types, self.work.set, self.cancels.append, host_dir=host_dir)


@pytest.fixture
def host_dir():
    with tempfile.TemporaryDirectory(prefix="eh-") as top:  # short: a socket path has 108 bytes at most
        yield Path(top) / "db"


def sessions(conn) -> tuple[int, int]:
    """(all, LISTEN) server connections to this test's database but `conn`'s own."""
    row = conn.execute(
        "SELECT count(*) AS n, count(*) FILTER (WHERE query ILIKE '%%LISTEN enchant_jobs%%') AS listen "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    return row["n"], row["listen"]


def listen_sessions(conn) -> int:
    return sessions(conn)[1]


def test_two_workers_of_three_slots_hold_three_connections(db_url, settings, conn):
    # `noop` handlers never open a connection of their own: what is left is the budget's floor.
    workers = WorkerThreads(Database(db_url), settings)
    try:
        for _ in range(2):
            workers.start(types=["noop"], concurrency=3)
        queue = JobQueue(conn)
        jobs = queue.enqueue_many([NewJob("noop") for _ in range(60)])
        wait_for(lambda: all(queue.get(j).status == "completed" for j in jobs), timeout=30)
        assert sessions(conn) == (3, 1)  # one bookkeeping connection each, one LISTEN for the host
    finally:
        workers.stop_all()


def test_workers_of_a_host_share_one_listen_session_and_all_wake(db_url, conn, host_dir):
    db = Database(db_url)
    views = [Woken() for _ in range(3)]
    other_type = Woken()
    with ExitStack() as stack:
        listeners = [stack.enter_context(v.listener(db, host_dir)) for v in views]
        stack.enter_context(other_type.listener(db, host_dir, types=("train_lora",)))
        wait_for(lambda: sum(li.leading for li in listeners) <= 1 and listen_sessions(conn) == 1)
        assert listen_sessions(conn) == 1  # four workers, one session
        for v in views + [other_type]:
            v.work.clear()
        conn.execute("SELECT pg_notify('enchant_jobs', 'noop')")
        for v in views:
            assert v.work.wait(5), "a worker of the host was not woken"
        assert not other_type.work.wait(0.3)  # each worker keeps to its own job types
        job = uuid.uuid4()
        conn.execute("SELECT pg_notify('enchant_cancel', %s)", (str(job),))
        wait_for(lambda: all(v.cancels == [job] for v in views + [other_type]), timeout=5)


def test_when_the_holder_is_killed_another_worker_takes_over(db_url, conn, host_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url, str(host_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "leading"
        views = [Woken(), Woken()]
        with ExitStack() as stack:
            listeners = [stack.enter_context(v.listener(Database(db_url), host_dir)) for v in views]
            assert not any(li.leading for li in listeners) and listen_sessions(conn) == 1
            conn.execute("SELECT pg_notify('enchant_jobs', 'noop')")
            for v in views:
                assert v.work.wait(5)  # relayed by the other process
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
            wait_for(lambda: sum(li.leading for li in listeners) == 1, timeout=5, what="a new holder")
            wait_for(lambda: listen_sessions(conn) == 1, timeout=5)  # the dead holder's session is gone
            for v in views:
                v.work.clear()
            conn.execute("SELECT pg_notify('enchant_jobs', 'noop')")
            for v in views:
                assert v.work.wait(5), "a worker missed the wake-up after the takeover"
            assert len(list(host_dir.glob("*.sock"))) == 2  # the dead one's socket was cleared away
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_others_can_write_means_the_workers_own_listen(db_url, conn, host_dir, caplog):
    host_dir.parent.chmod(0o777)  # anyone could send this worker cancellations there
    view = Woken()
    with caplog.at_level(logging.WARNING), view.listener(Database(db_url), host_dir) as listener:
        assert listener.leading and listen_sessions(conn) == 1
        conn.execute("SELECT pg_notify('enchant_jobs', 'noop')")
        assert view.work.wait(5)
    warnings = [r.message for r in caplog.records if "cannot share the host's listener" in r.message]
    assert len(warnings) == 1 and "nobody else can open" in warnings[0]
    assert not host_dir.exists()  # nothing was put into the untrusted folder
