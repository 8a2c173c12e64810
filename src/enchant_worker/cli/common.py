"""What every command needs: settings, a migrated database, JSON printing."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import uuid
from dataclasses import asdict, is_dataclass
from typing import Any

from enchant_worker.config import Settings, get_settings
from enchant_worker.db.connection import Database
from enchant_worker.db.setup import connect_database, migrate_database
from enchant_worker.errors import ConfigurationError, InvalidJob
from enchant_worker.jobspecs.limits import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JSON_DEPTH,
    check_json_limits,
    check_text,
)

BIGINT_MAX = 2**63 - 1
SHOWN_ARG_CHARS = 40  # a longer argument is cut in error messages


def open_database(*, wait: bool = False, auto_migrate: bool = True) -> tuple[Settings, Database]:
    """The configured database, migrated to the current schema (migrating is idempotent and locked).
    With wait (long-running processes), connecting retries with backoff for ENCHANT_DB_RETRY_MAX_S."""
    settings = get_settings()
    db = connect_database(settings, retry_for_s=settings.db_retry_max_s if wait else 0.0)
    if auto_migrate:
        migrate_database(db, settings)
    return settings, db


def freeze_start_up() -> None:
    """For a long-running command, once its parts are built: what start-up made (imports, handlers,
    settings) lives as long as the process, so it is moved out of the collector's sight and no full
    collection walks it again. The first one used to fall in a worker's first burst of jobs and stall
    every thread for ~50 ms (bench_queue: B's start on an idle queue 72-103 ms, 30-66 ms after)."""
    gc.collect()
    gc.freeze()


def uuid_arg(value: str) -> uuid.UUID:
    """argparse type for ids: a clear message instead of a traceback."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def positive_int(value: str) -> int:
    """argparse type for counts and limits: 1 up to what a Postgres bigint holds."""
    try:
        number = int(value)
    except ValueError:  # not a number, or more digits than int() reads
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{_shown(value)} is not a whole number of at least 1")
    if number > BIGINT_MAX:
        raise argparse.ArgumentTypeError(
            f"{_shown(value)} is above the largest allowed, {BIGINT_MAX} (a Postgres bigint)"
        )
    return number


def parse_metadata(text: str, *, field: str = "metadata") -> Any:
    """`--metadata TEXT` parsed as JSON and held to `check_json_limits` (nesting, string lengths, lone
    surrogates, NUL): anything else is an InvalidJob, which `main` prints as one line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJob(
            f"--{field} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:  # far deeper than the limit: the parser itself gives up
        raise InvalidJob(
            f"{field}: nested deeper than the limit of {MAX_JSON_DEPTH} levels of objects and arrays"
        ) from None
    check_json_limits(value, field=field)
    return value


def check_idempotency_key(key: str | None) -> str | None:
    """`--idempotency-key`: non-empty, at most MAX_IDEMPOTENCY_KEY_CHARS, storable text."""
    if key is not None:
        if not key:
            raise InvalidJob("idempotency_key: must not be empty; leave --idempotency-key out for none")
        check_text(key, field="idempotency_key", max_chars=MAX_IDEMPOTENCY_KEY_CHARS)
    return key


def _shown(value: str) -> str:
    """An argument as a message shows it: quoted, escaped, cut when long."""
    return repr(value if len(value) <= SHOWN_ARG_CHARS else value[:SHOWN_ARG_CHARS] + "...")


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
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)
