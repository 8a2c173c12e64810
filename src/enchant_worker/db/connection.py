"""Where the database is, and connections to it with errors a person can act on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from enchant_worker.config import Settings
from enchant_worker.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


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


def connect(url: str, *, autocommit: bool = True, retry_for_s: float = 0.0) -> psycopg.Connection:
    """A dict-row connection. With retry_for_s, keeps trying with backoff (a worker outlives a DB restart)."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.2
    while True:
        try:
            return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row, connect_timeout=5)
        except psycopg.ProgrammingError as exc:
            raise DatabaseUnavailable(f"invalid database URL ({exc}); check ENCHANT_DATABASE_URL") from exc
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"cannot reach the database at {_redacted(url)}: {str(exc).strip()}. "
                    "Check ENCHANT_DATABASE_URL, or unset it to use the embedded Postgres."
                ) from exc
            log.warning("database unreachable (%s); retrying in %.1fs", str(exc).strip(), delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class Database:
    """Opens connections to one database. Cheap to create; holds no connection itself."""

    def __init__(self, url: str, *, retry_for_s: float = 0.0):
        self.url = url
        self.retry_for_s = retry_for_s

    def open(self, *, autocommit: bool = True) -> psycopg.Connection:
        """A new connection the caller closes."""
        return connect(self.url, autocommit=autocommit, retry_for_s=self.retry_for_s)

    @contextmanager
    def connection(self, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
        conn = self.open(autocommit=autocommit)
        try:
            yield conn
        finally:
            conn.close()
