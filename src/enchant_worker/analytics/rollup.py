"""Rolling raw analytics events up into story_metrics and images.user_rating, and expiring them.

The daily reader metrics of a story (metric_type, one row per story and UTC day, metadata
`{"period": "day", "day": ..., "source": "events"}`):

    views              story_view events
    unique_viewers     distinct users (or sessions, for events without a user) among them
    reading_seconds    sum of reading_progress `seconds`
    readers            distinct users (or sessions) with reading_progress
    image_ratings      image_rating events of the story's images (each rater's latest per image and day)
    mean_image_rating  their mean (1-5); no row on a day without ratings

Each day is recomputed from the raw events and replaces its row, so a roll-up can run any number of
times. Raw events are deleted by whole UTC days and never inside the roll-up's window, so a day is
either complete or absent (and an absent day keeps the rows already recorded).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from enchant_worker.sql import q

DEFAULT_RETENTION_DAYS = 90.0
EXPIRE_BATCH_ROWS = 10_000


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def rollup_events(conn, first_day: date, last_day: date) -> dict[str, Any]:
    """Upserts the reader metrics of the UTC days [first_day, last_day] and refreshes the rating of every
    image rated in them; one transaction. Returns what changed."""
    with conn.transaction():
        rows = conn.execute(q("rollup_story_events"), {"from_day": first_day, "to_day": last_day}).fetchall()
        rated = conn.execute(
            q("upsert_image_ratings"),
            {"from_ts": day_start(first_day), "to_ts": day_start(last_day + timedelta(days=1))},
        ).fetchall()
        images = sorted({r["image_id"] for r in rated})
        if images:
            conn.execute(q("refresh_image_user_rating"), {"ids": images})
    return {
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        "stories": len({r["story_id"] for r in rows}),
        "metric_rows": len(rows),
        "images_rated": len(images),
    }


def expiry_cutoff(now: datetime, retention_days: float, rollup_days_back: int) -> datetime:
    """Raw events received before this go: older than the retention period, rounded down to the start
    of a UTC day, and never inside the roll-up's window (today and `rollup_days_back` days before)."""
    retained = (now - timedelta(days=retention_days)).astimezone(UTC).date()
    window_start = now.astimezone(UTC).date() - timedelta(days=rollup_days_back)
    return day_start(min(retained, window_start))


def expire_events(conn, before: datetime, *, batch_rows: int = EXPIRE_BATCH_ROWS) -> int:
    """Deletes raw events received before `before`, in batches of `batch_rows` (each its own
    transaction); returns how many."""
    deleted = 0
    while True:
        count = conn.execute(q("expire_events"), {"before": before, "limit": batch_rows}).rowcount
        deleted += count
        if count < batch_rows:
            return deleted
