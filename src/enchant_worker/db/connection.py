"""Where the database is, and connections to it with errors a person can act on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row

from enchant_worker.config import Settings
from enchant_worker.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# What connect() returns: rows are dicts keyed by column name.
Connection = psycopg.Connection[DictRow]
Row = TypeVar("Row")


def one(cursor: psycopg.Cursor[Row]) -> Row:
    """The row of a statement that always returns one (an aggregate, INSERT … RETURNING, a probe)."""
    row = cursor.fetchone()
    if row is None:  # a broken query or schema, never a caller's input
        raise RuntimeError("the statement returned no row")
    return row


def database_url(settings: Settings) -> str:
    """ENCHANT_DATABASE_URL when set; otherwise the embedded Postgres, started when needed."""
    if settings.database_url:
        return settings.database_url
    from enchant_worker.db import embedded

    try:
        return embedded.start(settings.pgdata)
    except Exception as exc:  # pgserver raises several kinds; all mean the same to the user
        raise DatabaseUnavailable(
            f"could not start the embedded Postgres in {settings.pgdata}: {exc}. "
            "Set ENCHANT_DATABASE_URL to use another server."
        ) from exc


def _redacted(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable URL)"
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())


# What one process holds on the server; quoted when Postgres runs out of connections (README, Running a fleet).
CONNECTION_BUDGET = (
    "a worker holds 1 connection through ENCHANT_DATABASE_URL (leasing, heartbeats, finishing) plus 1 per "
    "--concurrency slot whose handler reads the database, and the workers of a host share 1 for LISTEN "
    "through ENCHANT_DIRECT_DATABASE_URL (or the main URL when there is no pooler); an API process up to 10 "
    "plus 1 for LISTEN (once a request waits on a job), a scheduler 1 + 4 while tasks run"
)


def _too_many(exc: psycopg.OperationalError) -> bool:
    text = str(exc)
    return (
        getattr(exc, "sqlstate", None) == "53300"
        or "too many clients" in text
        or "too many connections" in text
        or "no more connections allowed" in text
    )


def too_many_message(url: str, exc: BaseException) -> str:
    return (
        f"the database at {_redacted(url)} refuses new connections: {str(exc).strip()}. Its connection budget "
        f"is spent (Postgres max_connections, a role or database CONNECTION LIMIT, or the pooler's "
        f"max_client_conn): {CONNECTION_BUDGET}. Put PgBouncer in transaction mode in front of the server "
        "(ENCHANT_DATABASE_URL) with ENCHANT_DIRECT_DATABASE_URL naming the server, or raise the limit."
    )


def connect(
    url: str, *, autocommit: bool = True, retry_for_s: float = 0.0, prepare: bool = True
) -> Connection:
    """A dict-row connection. With retry_for_s, keeps trying with backoff (a worker outlives a DB restart).
    prepare=False: no server-side prepared statements (a pooler in transaction mode would hand them to
    another client's session)."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.2
    extra = {} if prepare else {"prepare_threshold": None}
    while True:
        try:
            return psycopg.connect(
                url, autocommit=autocommit, row_factory=dict_row, connect_timeout=5, **extra
            )
        except psycopg.ProgrammingError as exc:
            raise DatabaseUnavailable(f"invalid database URL ({exc}); check ENCHANT_DATABASE_URL") from exc
        except psycopg.OperationalError as exc:
            if _too_many(exc):
                if time.monotonic() + delay > deadline:
                    raise DatabaseUnavailable(too_many_message(url, exc)) from exc
                log.warning("%s; retrying in %.1fs", too_many_message(url, exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"cannot reach the database at {_redacted(url)}: {str(exc).strip()}. "
                    "Check ENCHANT_DATABASE_URL, or unset it to use the embedded Postgres."
                ) from exc
            log.warning("database unreachable (%s); retrying in %.1fs", str(exc).strip(), delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class Database:
    """Opens connections to one database. Cheap to create; holds no connection itself.

    `url` may be a pooler in transaction mode (`pooled`): its connections then never prepare statements
    nor set session state. `direct_url`, when known, reaches the server itself for what needs a session
    (LISTEN, session advisory locks); `session_url` is that, or `url` when it is not pooled, or None."""

    def __init__(
        self, url: str, *, retry_for_s: float = 0.0, direct_url: str | None = None, pooled: bool = False
    ):
        self.url = url
        self.retry_for_s = retry_for_s
        self.direct_url = direct_url
        self.pooled = pooled

    @property
    def session_url(self) -> str | None:
        return self.direct_url or (None if self.pooled else self.url)

    def open(self, *, autocommit: bool = True) -> Connection:
        """A new connection the caller closes."""
        return connect(self.url, autocommit=autocommit, retry_for_s=self.retry_for_s, prepare=not self.pooled)

    def open_session(self) -> Connection:
        """A connection with a session of its own (for LISTEN); DatabaseUnavailable when there is none."""
        if self.session_url is None:
            raise DatabaseUnavailable(
                "no session connection: ENCHANT_DATABASE_URL is a pooler in transaction "
                "mode and ENCHANT_DIRECT_DATABASE_URL is not set or unreachable"
            )
        return connect(self.session_url, retry_for_s=self.retry_for_s)

    @contextmanager
    def connection(self, *, autocommit: bool = True) -> Iterator[Connection]:
        conn = self.open(autocommit=autocommit)
        try:
            yield conn
        finally:
            conn.close()
