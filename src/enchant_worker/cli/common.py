"""What every command needs: settings, a migrated database, JSON printing."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict, is_dataclass
from typing import Any

from enchant_worker.config import Settings, get_settings
from enchant_worker.db.connection import Database, database_url
from enchant_worker.db.migrate import migrate
from enchant_worker.errors import ConfigurationError


def open_database(*, wait: bool = False, auto_migrate: bool = True) -> tuple[Settings, Database]:
    """The configured database, migrated to the current schema (migrating is idempotent and locked).
    With wait (long-running processes), connecting retries with backoff for ENCHANT_DB_RETRY_MAX_S."""
    settings = get_settings()
    db = Database(database_url(settings), retry_for_s=settings.db_retry_max_s if wait else 0.0)
    if auto_migrate:
        with db.connection() as conn:
            migrate(conn, settings.migrations_dir)
    return settings, db


def uuid_arg(value: str) -> uuid.UUID:
    """argparse type for ids: a clear message instead of a traceback."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def job_types_arg(value: str | None) -> list[str] | None:
    """--types a,b → ['a', 'b']; absent → None (every registered type); given but empty is refused."""
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    if not types:
        raise ConfigurationError(f"--types {value!r} names no job type; leave it out to serve every type")
    return types


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=_default)
    sys.stdout.write("\n")


def _default(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    return str(value)
