"""Data migrations that ship with Enchant Worker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from enchant_worker.data_migrations.registry import DataMigration
from enchant_worker.db.connection import Connection, one
from enchant_worker.scheduling.tasks import record_story_metrics
from enchant_worker.sql import q


def _first_day(conn: Connection) -> date | None:
    return one(conn.execute(q("first_image_day")))["day"]


def _metrics_days(conn: Connection) -> int:
    first = _first_day(conn)
    return 0 if first is None else (datetime.now(UTC).date() - first).days + 1


def _metrics_batch(conn: Connection, checkpoint, limit: int) -> tuple[int, dict]:
    """Records the daily story metrics of `limit` days, from the oldest image's day up to today."""
    today = datetime.now(UTC).date()
    if checkpoint is None:
        start = _first_day(conn)
        if start is None:
            return 0, {}
    else:
        start = date.fromisoformat(checkpoint["next_day"])
    if start > today:
        return 0, checkpoint
    last = min(start + timedelta(days=limit - 1), today)
    record_story_metrics(conn, start, last)
    return (last - start).days + 1, {"next_day": (last + timedelta(days=1)).isoformat()}


BACKFILL_STORY_METRICS = DataMigration(
    name="backfill_story_metrics",
    from_version="0.1",
    to_version="0.1",
    count=_metrics_days,
    batch=_metrics_batch,
    batch_size=31,
    description="record the daily story_metrics of every day since the first image (the scheduler keeps "
    "only today and yesterday current)",
)

BUILTIN = [BACKFILL_STORY_METRICS]
