"""Start-up of every long-running command: reach the database, find out whether ENCHANT_DATABASE_URL is a
pooler (and in which mode), check ENCHANT_DIRECT_DATABASE_URL, and migrate over a connection that can
hold the migration lock (a session advisory lock, which a pooler in transaction mode cannot keep)."""

from __future__ import annotations

import logging

import psycopg

from enchant_worker.config import Settings
from enchant_worker.db import pooler
from enchant_worker.db.connection import Database, _too_many, connect, database_url, too_many_message
from enchant_worker.db.migrate import check, migrate
from enchant_worker.errors import DatabaseUnavailable, MigrationError

log = logging.getLogger(__name__)


def connect_database(settings: Settings, *, retry_for_s: float = 0.0) -> Database:
    url = database_url(settings)
    connect(url, retry_for_s=retry_for_s, prepare=False).close()  # reachable, or a clear error
    if settings.database_url is None:  # the embedded server: nothing in between
        return Database(url, retry_for_s=retry_for_s)
    try:
        pooling = pooler.check_pooled_url(url)
        direct = (
            pooler.check_direct_url(settings.direct_database_url) if settings.direct_database_url else None
        )
    except psycopg.OperationalError as exc:
        if _too_many(exc):
            raise DatabaseUnavailable(too_many_message(url, exc)) from exc
        raise DatabaseUnavailable(f"could not inspect the database connection: {str(exc).strip()}") from exc
    if pooling.pooled and direct is None and not settings.direct_database_url:
        log.info(
            "no ENCHANT_DIRECT_DATABASE_URL behind the pooler: workers poll for work and the scheduler "
            "elects its leader through a lease row"
        )
    return Database(url, retry_for_s=retry_for_s, direct_url=direct, pooled=pooling.pooled)


def migrate_database(db: Database, settings: Settings) -> list[str]:
    """Applies pending migrations through a session. Behind a pooler without a direct URL, only checks
    that nothing is pending, and otherwise says how to migrate."""
    if db.session_url is None:
        with db.connection() as conn:
            pending = check(conn, settings.migrations_dir)
        if pending:
            names = ", ".join(m.path.name for m in pending)
            raise MigrationError(
                f"{len(pending)} migration(s) pending ({names}), but ENCHANT_DATABASE_URL is a pooler in "
                "transaction mode, which cannot hold the migration lock (a session advisory lock). Set "
                "ENCHANT_DIRECT_DATABASE_URL to the Postgres server itself, or run once "
                "`ENCHANT_DATABASE_URL=<the server's URL> enchant-worker migrate`."
            )
        return []
    with connect(db.session_url, retry_for_s=db.retry_for_s) as conn:
        return migrate(conn, settings.migrations_dir)
