"""Views of community stories, counted once per viewer and day and written in batches.

Each API process keeps the views it saw (de-duplicated in memory for the day) and writes them in one
statement when FLUSH_AT_VIEWS have gathered or FLUSH_EVERY_S has passed since the last write, and when it
stops. The database de-duplicates across processes (`community_views`'s key) and adds exactly the new
rows to `view_count` in the same statement, so the count stays exact.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from enchant_worker.sql import q

FLUSH_AT_VIEWS = 200
FLUSH_EVERY_S = 5.0


class ViewBuffer:
    def __init__(self, flush_at: int = FLUSH_AT_VIEWS, flush_every_s: float = FLUSH_EVERY_S):
        self.flush_at = flush_at
        self.flush_every_s = flush_every_s
        self._pending: set[tuple[uuid.UUID, str, date]] = set()
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def add(self, story_id: uuid.UUID, viewer: str) -> bool:
        """Counts the view; True when a batch is due (the caller then flushes on its connection)."""
        with self._lock:
            self._pending.add((story_id, viewer, datetime.now(UTC).date()))
            return (
                len(self._pending) >= self.flush_at
                or time.monotonic() - self._last_flush >= self.flush_every_s
            )

    def flush(self, conn: Any) -> int:
        """Writes the pending views in one statement; returns how many there were."""
        with self._lock:
            batch, self._pending = self._pending, set()
            self._last_flush = time.monotonic()
        if not batch:
            return 0
        rows = list(batch)
        try:
            conn.execute(
                q("community_views_record"),
                {
                    "story_ids": [r[0] for r in rows],
                    "viewers": [r[1] for r in rows],
                    "days": [r[2] for r in rows],
                },
            )
        except Exception:
            with self._lock:  # keep them for the next try
                self._pending |= batch
            raise
        return len(rows)
