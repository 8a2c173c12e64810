"""A data migration over a test table, importable by worker subprocesses
(ENCHANT_DATA_MIGRATION_MODULES=tests.integration.operations.sample_migrations).

dm_items(id, value, doubled, times_migrated): the migration sets doubled = value * 2 and counts how often
each row was migrated, so a test can check that every row was migrated exactly once. DM_BATCH_SLEEP_S
slows each batch down (to kill a run mid-way); dm_control.fail_at makes the batch holding that id raise.
"""

from __future__ import annotations

import os
import time

from enchant_worker.data_migrations import DataMigration

SETUP_SQL = """
CREATE TABLE dm_items (id INTEGER PRIMARY KEY, value INTEGER NOT NULL, doubled INTEGER,
                       times_migrated INTEGER NOT NULL DEFAULT 0);
INSERT INTO dm_items (id, value) SELECT g, g % 1000 FROM generate_series(1, %(rows)s) AS g;
CREATE TABLE dm_control (fail_at INTEGER);
INSERT INTO dm_control VALUES (NULL);
"""


def setup(conn, rows: int) -> None:
    conn.execute(SETUP_SQL.replace("%(rows)s", str(int(rows))))


def _count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM dm_items").fetchone()["n"]


def _batch(conn, checkpoint, limit):
    after = (checkpoint or {}).get("after_id", 0)
    ids = [
        r["id"]
        for r in conn.execute(
            """WITH batch AS (SELECT id FROM dm_items WHERE id > %s ORDER BY id LIMIT %s)
           UPDATE dm_items d SET doubled = d.value * 2, times_migrated = d.times_migrated + 1
           FROM batch WHERE d.id = batch.id RETURNING d.id""",
            (after, limit),
        )
    ]
    fail_at = conn.execute("SELECT fail_at FROM dm_control").fetchone()["fail_at"]
    if fail_at is not None and fail_at in ids:
        raise RuntimeError(f"item {fail_at} cannot be migrated")
    time.sleep(float(os.environ.get("DM_BATCH_SLEEP_S", "0")))
    return len(ids), {"after_id": max(ids) if ids else after}


DOUBLE_VALUES = DataMigration(
    name="double_values",
    from_version="1",
    to_version="2",
    count=_count,
    batch=_batch,
    description="dm_items.doubled = value * 2 (tests)",
)

DATA_MIGRATIONS = [DOUBLE_VALUES]
