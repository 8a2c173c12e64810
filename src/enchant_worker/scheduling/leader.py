"""Leader election: whoever holds a Postgres advisory lock on its own connection leads; behind a pooler in
transaction mode (no session of our own), whoever holds the lease row `scheduler_lease` leads.

Session-level advisory locks belong to a connection, so the lock is held exactly as long as the leader's
session lives: a leader that exits, crashes or is killed loses it the moment its connection closes (a host
that vanishes, within the TCP keepalive time set on the session, about 10 s). Followers try the lock every
`check_s`; the leader checks its connection as often and steps down the moment it fails. Works across
processes and hosts sharing one database.

With `lease_only` (ENCHANT_DATABASE_URL is a pooler and there is no direct URL) the leader renews the row's
expiry every `check_s` and a follower takes the row once it expired (LEASE_CHECKS checks without renewal;
the server's clock decides, so hosts' clocks do not matter). A lock holder also holds the row (marked
via_lock), so schedulers of both kinds in one fleet still elect one leader; a new lock holder takes over
a row held through the lock at once. Ticks are claimed in maintenance_runs, so even two leaders for a
moment (a leader stalled past its lease) never run a tick twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from enchant_worker.db.connection import one
from enchant_worker.sql import q

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
LEASE_CHECKS = 5  # a lease row not renewed for this many checks is taken over
MIN_LEASE_S = 1.0


class LeaderElection:
    def __init__(
        self,
        url: str,
        identity: str,
        *,
        check_s: float = 1.0,
        on_elected: Callable[[], None] = lambda: None,
        on_deposed: Callable[[], None] = lambda: None,
        lease_only: bool = False,
    ):
        self.url = url
        self.lease_only = lease_only
        self.lease_s = max(MIN_LEASE_S, LEASE_CHECKS * check_s)
        self.identity = identity
        self.check_s = check_s
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self._conn: psycopg.Connection | None = None
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def wait_until_leader(self, timeout_s: float | None = None) -> bool:
        return self._leader.wait(timeout_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Step down (releasing the lock at once, so another scheduler takes over) and stop trying."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.check_s + CONNECT_TIMEOUT_S + 5)

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.check_once()
                self._stop.wait(self.check_s)
        finally:
            self._step_down(release=True)

    def check_once(self) -> bool:
        """One round: a follower tries to take the lock and the lease row; the leader renews the row."""
        try:
            conn = self._connection()
            if self.is_leader:
                if not self._take_lease(conn):
                    log.warning("scheduler %s lost the leader lease; stepping down", self.identity)
                    self._step_down(release=True)
            elif self.lease_only or one(conn.execute(q("try_scheduler_lock")))[0]:
                if self._take_lease(conn):
                    self._leader.set()
                    log.info("scheduler %s is now the leader", self.identity)
                    self._notify(self.on_elected)
                elif not self.lease_only:  # a scheduler without a session leads through the row
                    conn.execute(q("release_scheduler_lock"))
        except psycopg.Error as exc:
            if self.is_leader:
                log.warning(
                    "scheduler %s lost its database session (%s); stepping down",
                    self.identity,
                    str(exc).strip(),
                )
            else:
                log.warning(
                    "scheduler %s cannot reach the database (%s); will retry", self.identity, str(exc).strip()
                )
            self._step_down(release=False)
        return self.is_leader

    def _take_lease(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            q("take_scheduler_lease"),
            {"holder": self.identity, "via_lock": not self.lease_only, "ttl_s": self.lease_s},
        ).fetchone()
        return row is not None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            if self.lease_only:  # through a pooler: no prepared statements, no session settings
                self._conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    prepare_threshold=None,
                    application_name=self.identity[:63],
                )
                return self._conn
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name=self.identity[:63],
                # The client notices a dead server (or network) within about 10 s too.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
            self._conn.execute(q("set_session_keepalives"))
        return self._conn

    def _step_down(self, *, release: bool) -> None:
        was_leader = self.is_leader
        self._leader.clear()
        if was_leader:
            self._notify(self.on_deposed)
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if release and was_leader and not conn.closed:
                conn.execute(q("release_scheduler_lease"), {"holder": self.identity})
                if not self.lease_only:
                    conn.execute(q("release_scheduler_lock"))
                log.info("scheduler %s stepped down", self.identity)
        except psycopg.Error:
            pass  # closing the session releases the lock anyway
        finally:
            conn.close()

    def _notify(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # a callback must not break the election loop
            log.exception("scheduler leadership callback failed")


def current_leader(conn: psycopg.Connection[Any]) -> str | None:
    """The identity (application_name) of the scheduler leading now, or None."""
    row = (
        conn.execute(q("scheduler_lease_holder")).fetchone() or conn.execute(q("scheduler_leader")).fetchone()
    )
    if row is None:
        return None
    return row["leader"] if isinstance(row, dict) else row[0]
