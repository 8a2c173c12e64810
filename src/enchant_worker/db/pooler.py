"""What stands between us and Postgres: the server itself, or a pooler (PgBouncer) in session, transaction
or statement mode, found out by behaviour at start-up (a client cannot ask PgBouncer its mode).

- A pooler answers the startup with a cancel key of its own, so the backend pid the client was told
  differs from `pg_backend_pid()`.
- Statement mode refuses a transaction of two statements, which the queue needs.
- Transaction mode hands one server connection to several clients in turn: two clients asking
  `pg_backend_pid()` one after the other see the same backend, which session mode and the server itself
  never allow (PgBouncer reuses the last released server connection first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from enchant_worker.db.connection import one
from enchant_worker.errors import ConfigurationError

log = logging.getLogger(__name__)

PROBE_ROUNDS = 5


@dataclass(frozen=True)
class Pooling:
    mode: str  # direct | session | transaction | statement

    @property
    def pooled(self) -> bool:
        """Sessions are shared: no LISTEN, session locks, session SET or server-side prepared statements."""
        return self.mode in ("transaction", "statement")


def _open(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


def detect(url: str) -> Pooling:
    with _open(url) as conn:
        told = conn.info.backend_pid
        actual = one(conn.execute("SELECT pg_backend_pid()"))[0]
        if told == actual:
            return Pooling("direct")
        try:
            with conn.transaction():
                conn.execute("SELECT 1")
                conn.execute("SELECT 2")
        except psycopg.Error as exc:
            if "statement pooling" in str(exc):
                return Pooling("statement")
            raise
        with _open(url) as other:
            for _ in range(PROBE_ROUNDS):
                mine = one(conn.execute("SELECT pg_backend_pid()"))[0]
                theirs = one(other.execute("SELECT pg_backend_pid()"))[0]
                if mine == theirs:
                    return Pooling("transaction")
        return Pooling("session")


def explain(mode: str, *, what: str = "ENCHANT_DATABASE_URL") -> str:
    if mode == "statement":
        return (
            f"{what} points at a pooler in statement mode (PgBouncer pool_mode = statement), which refuses "
            "transactions of more than one statement; the queue needs them. Set pool_mode = transaction "
            "for this database in pgbouncer.ini (or add a [databases] entry with pool_mode=transaction)."
        )
    if mode == "session":
        return (
            f"{what} points at a pooler in session mode (PgBouncer pool_mode = session): every client "
            "connection keeps a server connection of its own, so the pooler saves nothing. It works; for "
            "a fleet set pool_mode = transaction and ENCHANT_DIRECT_DATABASE_URL to the server itself "
            "(see README, Running a fleet)."
        )
    return ""


def check_pooled_url(url: str) -> Pooling:
    """ENCHANT_DATABASE_URL: statement mode refused, session mode warned about."""
    pooling = detect(url)
    if pooling.mode == "statement":
        raise ConfigurationError(explain("statement"))
    if pooling.mode == "session":
        log.warning("%s", explain("session"))
    elif pooling.mode == "transaction":
        log.info(
            "ENCHANT_DATABASE_URL is a pooler in transaction mode: no LISTEN, session locks or "
            "prepared statements on it"
        )
    return pooling


def check_direct_url(url: str) -> str | None:
    """ENCHANT_DIRECT_DATABASE_URL: must hold a session. None (with one warning) when it is unreachable,
    so that the process still runs: the worker polls and the scheduler elects through a lease row."""
    try:
        pooling = detect(url)
    except psycopg.Error as exc:
        log.warning(
            "ENCHANT_DIRECT_DATABASE_URL is unreachable (%s); running without it: workers poll "
            "for work (ENCHANT_POLL_INTERVAL_S at most) instead of LISTEN, the scheduler elects its "
            "leader through a lease row, and migrations cannot run",
            str(exc).strip().splitlines()[0],
        )
        return None
    if pooling.pooled:
        raise ConfigurationError(
            f"ENCHANT_DIRECT_DATABASE_URL points at a pooler in {pooling.mode} mode; it must name the Postgres "
            "server itself (it carries LISTEN, the migration lock and the scheduler's leader lock)"
        )
    return url
