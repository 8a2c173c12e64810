"""Taking back the jobs of dead workers: the one place that reaps. The scheduler's `reap_leases` task and
every worker's watchdog call it (every ENCHANT_REAP_INTERVAL_S), so a worker's death is repaired whether
or not a scheduler runs; the statement is one index probe when nothing has expired."""

from __future__ import annotations

import logging
from typing import Any

from enchant_worker.queue.jobqueue import JobQueue

log = logging.getLogger(__name__)


def reap_expired(queue: JobQueue) -> dict[str, int]:
    """Jobs whose lease expired go back to the queue (or fail for good when out of attempts); jobs that
    were held but never started go back without spending an attempt. Logs one line per dead worker."""
    reaped = queue.reap()
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for row in reaped:
        by_worker.setdefault(row.get("leased_by") or "(unknown)", []).append(row)
    for worker, rows in by_worker.items():
        ran = [r for r in rows if r["started"]]
        log.warning(
            "worker %s stopped heartbeating: took back %d job(s) it was running (%d failed for good, "
            "attempts spent) and %d it held but never started (no attempt spent)",
            worker,
            len(ran),
            sum(r["status"] == "failed" for r in ran),
            len(rows) - len(ran),
        )
    started = sum(bool(r["started"]) for r in reaped)
    failed = sum(bool(r["started"]) and r["status"] == "failed" for r in reaped)
    return {"reaped": len(reaped), "failed": failed, "unstarted": len(reaped) - started}
