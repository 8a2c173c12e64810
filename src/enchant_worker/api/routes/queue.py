"""Queue statistics and workers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from enchant_worker.api.deps import AdminDep, PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON
from enchant_worker.api.schemas import QueueStats, TypeCounts, WorkerPublic
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION

router = APIRouter(tags=["queue"], responses=COMMON)
FEATURE = BASIC_GENERATION
MB = 2**20


def queue_stats(store: Store, minutes: int, counts_rows: list[Row] | None = None) -> QueueStats:
    """`counts_rows`: jobs per type and state (default: the whole table, `store.queue_counts()`)."""
    counts: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for r in store.queue_counts() if counts_rows is None else counts_rows:
        counts.setdefault(r["job_type"], {})[r["status"]] = r["n"]
        totals[r["status"]] = totals.get(r["status"], 0) + r["n"]
    oldest = {r["job_type"]: r["age_s"] for r in store.oldest_pending()}
    times = {r["job_type"]: r for r in store.run_times(minutes)}
    by_type = [
        TypeCounts(
            job_type=t,
            counts=counts.get(t, {}),
            oldest_pending_age_s=oldest.get(t),
            p50_run_s=times[t]["p50_s"] if t in times else None,
            p95_run_s=times[t]["p95_s"] if t in times else None,
            completed_in_window=times[t]["n"] if t in times else 0,
        )
        for t in sorted(set(counts) | set(oldest))
    ]
    return QueueStats(
        window_minutes=minutes,
        totals=totals,
        oldest_pending_age_s=max(oldest.values(), default=None),
        by_type=by_type,
        throughput=store.throughput(minutes),
    )


@router.get("/queue/stats", response_model=QueueStats)
def get_queue_stats(
    store: StoreDep, principal: PrincipalDep, window_minutes: Annotated[int, Query(ge=1, le=1440)] = 30
) -> QueueStats:
    """Jobs per status × job type, oldest pending age, jobs finished per minute over the window, and
    p50/p95 run time per job type over the jobs completed in the window. Counts only: any key."""
    return queue_stats(store, window_minutes)


def _gpu_memory(device: dict[str, Any], key: str) -> float | None:
    """GPU memory as the worker reports it (MB, or bytes under a *_bytes key)."""
    if isinstance(device.get(f"{key}_mb"), int | float):
        return float(device[f"{key}_mb"])
    if isinstance(device.get(f"{key}_bytes"), int | float):
        return float(device[f"{key}_bytes"]) / MB
    return None


def worker_public(row: Row) -> WorkerPublic:
    device = row["device"] if isinstance(row["device"], dict) else {}
    return WorkerPublic(
        **{k: row[k] for k in WorkerPublic.model_fields if k in row},
        gpu_memory_total_mb=_gpu_memory(device, "memory_total"),
        gpu_memory_used_mb=_gpu_memory(device, "memory_used") or _gpu_memory(device, "memory_allocated"),
    )


@router.get("/workers", response_model=list[WorkerPublic])
def list_workers(store: StoreDep, admin: AdminDep, include_stopped: bool = False) -> list[WorkerPublic]:
    """Workers: host, device and GPU memory, the jobs each runs now with progress and lease age, and
    when it last sent a heartbeat. Admin keys only."""
    return [worker_public(r) for r in store.workers(include_stopped)]
