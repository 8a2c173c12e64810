"""A private Postgres under ENCHANT_HOME, from the binaries the `pgserver` package ships.

It listens on a Unix socket only and keeps running after the command that started it, so every later
command (and every process of a single box) shares it; `enchant-worker db stop` stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)


# pgserver keeps its socket lock under the user's runtime folder; where none is set it falls back to /tmp
# and says so on every import.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server(pgdata: Path) -> PostgresServer:
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    from pgserver.postgres_server import get_server

    pgdata.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata.resolve(), cleanup_mode=None)


def start(pgdata: Path) -> str:
    """Starts the embedded server if it is not running (initialising pgdata the first time); returns its URL."""
    server = _server(pgdata)
    _ensure_database(server.get_uri())
    return server.get_uri(database="enchant")


def _ensure_database(admin_url: str) -> None:
    import psycopg

    from enchant_worker.sql import q

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute(q("embedded_database_exists")).fetchone() is None:
            try:
                conn.execute(q("create_embedded_database"))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # another process started at the same moment made it (e.g. parallel test workers)


def status(pgdata: Path) -> dict[str, Any]:
    """What is known of the embedded server without starting it."""
    pid_file = pgdata / "postmaster.pid"
    if not (pgdata / "PG_VERSION").exists():
        return {"initialised": False, "running": False, "pgdata": str(pgdata)}
    running = False
    pid = None
    if pid_file.exists():
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            import os

            os.kill(pid, 0)
            running = True
        except OSError:
            running = False
    return {"initialised": True, "running": running, "pid": pid if running else None, "pgdata": str(pgdata)}


def stop(pgdata: Path) -> bool:
    """Stops the embedded server; False when it was not running."""
    if not status(pgdata)["running"]:
        return False
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import from the binaries

    server = _server(pgdata)
    pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
    return True
