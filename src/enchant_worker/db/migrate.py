"""Applies migrations/NNNN_description.sql in order, recorded in schema_migrations.

Each file runs in its own transaction under an advisory lock, so two processes migrating at once are
safe: the second waits, then finds nothing left to do. An applied file whose content changed since is
refused by name: a schema is changed by a new migration, never by editing an old one.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from enchant_worker.db.connection import Connection, one
from enchant_worker.errors import MigrationError
from enchant_worker.sql import q

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist; set ENCHANT_MIGRATIONS_DIR")
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(path.stem, path))
    versions = [m.version[:4] for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


def applied(conn: Connection) -> dict[str, str]:
    """version → hash of what is recorded; empty when the table does not exist yet."""
    if not one(conn.execute(q("schema_migrations_exists")))["present"]:
        return {}
    return {r["version"]: r["migration_hash"] for r in conn.execute(q("applied_migrations"))}


def check(conn: Connection, directory: Path) -> list[Migration]:
    """Refuses changed files; returns the migrations not applied yet."""
    done = applied(conn)
    pending = []
    for migration in discover(directory):
        recorded = done.get(migration.version)
        if recorded is None:
            pending.append(migration)
        elif recorded != migration.hash:
            raise MigrationError(
                f"migration {migration.path.name} was changed after it was applied "
                f"(recorded hash {recorded[:12]}, file hash {migration.hash[:12]}). "
                "Restore the file and put the change in a new migration."
            )
    return pending


def migrate(conn: Connection, directory: Path) -> list[str]:
    """Applies what is pending; returns the versions applied. `conn` must be in autocommit mode."""
    conn.execute(q("lock_migrations"))
    try:
        conn.execute(q("create_schema_migrations"))
        pending = check(conn, directory)
        for migration in pending:
            log.info("applying migration %s", migration.path.name)
            try:
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        q("record_migration"), {"version": migration.version, "hash": migration.hash}
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.path.name} failed: {str(exc).strip()}") from exc
        return [m.version for m in pending]
    finally:
        conn.execute(q("unlock_migrations"))
