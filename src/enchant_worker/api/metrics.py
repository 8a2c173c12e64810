"""Prometheus metrics, read from the database at each scrape (so every API process reports the same
numbers, and a scrape shows the whole fleet, not one process).

Gauges count rows as they are now. Counters (`*_total`, the histogram) come from the transition counters
that triggers keep (migration 0014): they only ever increase, so `rate()` and `increase()` stay true
across retries and the archiving of old jobs."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from enchant_worker.api.store import Store

log = logging.getLogger(__name__)

# Counter families from job_counters: name, help, counter names read (each a label value, or None).
COUNTERS: list[tuple[str, str, dict[str, str | None]]] = [
    ("enchant_jobs_enqueued", "Jobs enqueued", {"enqueued": None}),
    (
        "enchant_job_leases",
        "Leases taken (a job leased again after a retry or a hand-back counts again)",
        {"leased": None},
    ),
    (
        "enchant_jobs_finished",
        "Jobs finished, by outcome (a retried job that finishes again counts again)",
        {"completed": "completed", "failed": "failed", "cancelled": "cancelled"},
    ),
    ("enchant_jobs_failed", "Jobs that failed for good", {"failed": None}),
    ("enchant_jobs_requeued", "Finished jobs sent back to the queue (retry)", {"requeued": None}),
    ("enchant_job_errors", "Handler exceptions (each failed attempt)", {"errors": None}),
    ("enchant_job_crashes", "Leases that expired while the job ran (worker died or hung)", {"crashes": None}),
    (
        "enchant_job_unstarted_reaps",
        "Jobs taken back unstarted from a worker that died (no attempt spent)",
        {"unstarted_reaps": None},
    ),
]
MB = 2**20


class QueueCollector(Collector):
    def __init__(self, open_store: Callable[[], AbstractContextManager[Store]]):
        self.open_store = open_store

    def collect(self) -> Iterator[Metric]:
        with self.open_store() as store:
            yield from self._queue(store)
            yield from self._workers(store)
            yield from self._costs(store)

    def _costs(self, store: Store) -> Iterator[Metric]:
        cost = CounterMetricFamily(
            "enchant_image_cost",
            "What users' images cost, by provider (cost_per_image in configs/providers.toml; local is 0)",
            labels=["user_id", "provider"],
        )
        images = CounterMetricFamily(
            "enchant_images_generated",
            "Images of completed generate_image jobs",
            labels=["user_id", "provider"],
        )
        for r in store.image_costs():
            cost.add_metric([r["user_id"], r["provider"] or ""], r["cost"])
            images.add_metric([r["user_id"], r["provider"] or ""], r["images"] or 0)
        yield from (cost, images)

    def _queue(self, store: Store) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "enchant_queue_jobs", "Jobs by status and job type", labels=["status", "job_type"]
        )
        seen_types = set()
        for r in store.queue_counts():
            depth.add_metric([r["status"], r["job_type"]], r["n"])
            seen_types.add(r["job_type"])
        yield depth

        oldest = GaugeMetricFamily(
            "enchant_queue_oldest_pending_seconds",
            "Age of the oldest runnable pending job",
            labels=["job_type"],
        )
        for r in store.oldest_pending():
            oldest.add_metric([r["job_type"]], r["age_s"])
        yield oldest

        values = {(r["job_type"], r["counter"]): r["value"] for r in store.job_counters()}
        yield from _counters(values)
        yield _duration(store, values)

    def _workers(self, store: Store) -> Iterator[Metric]:
        heartbeat = GaugeMetricFamily(
            "enchant_worker_last_heartbeat_timestamp_seconds",
            "When the worker last sent a heartbeat (Unix time)",
            labels=["worker", "host"],
        )
        age = GaugeMetricFamily(
            "enchant_worker_heartbeat_age_seconds",
            "Seconds since the worker's last heartbeat",
            labels=["worker", "host"],
        )
        running = GaugeMetricFamily(
            "enchant_worker_running_jobs", "Jobs the worker runs now", labels=["worker"]
        )
        done = CounterMetricFamily(
            "enchant_worker_jobs", "Jobs the worker finished", labels=["worker", "outcome"]
        )
        gpu_total = GaugeMetricFamily(
            "enchant_worker_gpu_memory_total_bytes",
            "GPU memory of the worker's device",
            labels=["worker", "device"],
        )
        gpu_used = GaugeMetricFamily(
            "enchant_worker_gpu_memory_used_bytes",
            "GPU memory in use, as last reported",
            labels=["worker", "device"],
        )
        for w in store.workers():
            labels = [w["id"], w["host"]]
            heartbeat.add_metric(labels, w["heartbeat_at"].timestamp())
            age.add_metric(labels, w["heartbeat_age_s"])
            running.add_metric([w["id"]], len(w["current_jobs"]))
            done.add_metric([w["id"], "completed"], w["jobs_completed"])
            done.add_metric([w["id"], "failed"], w["jobs_failed"])
            device = w["device"] if isinstance(w["device"], dict) else {}
            name = str(device.get("name") or device.get("kind") or "unknown")
            for family, key in (
                (gpu_total, "memory_total"),
                (gpu_used, "memory_used"),
                (gpu_used, "memory_allocated"),
            ):
                value = device.get(f"{key}_mb")
                if isinstance(value, int | float):
                    family.add_metric([w["id"], name], value * MB)
                    if family is gpu_used:
                        break
        yield from (heartbeat, age, running, done, gpu_total, gpu_used)


def _counters(values: dict[tuple[str, str], float]) -> Iterator[CounterMetricFamily]:
    job_types = sorted({job_type for job_type, _ in values})
    for name, documentation, counters in COUNTERS:
        labelled = any(label is not None for label in counters.values())
        family = CounterMetricFamily(
            name, documentation, labels=["job_type", "status"] if labelled else ["job_type"]
        )
        for job_type in job_types:
            for counter, label in counters.items():
                family.add_metric(
                    [job_type, label or ""] if labelled else [job_type], values.get((job_type, counter), 0.0)
                )
        yield family


def _duration(store: Store, values: dict[tuple[str, str], float]) -> HistogramMetricFamily:
    duration = HistogramMetricFamily(
        "enchant_job_duration_seconds",
        "Run time of completed jobs (the last attempt, from its lease)",
        labels=["job_type"],
    )
    by_type: dict[str, list[tuple[str, float]]] = {}
    for r in store.duration_buckets():  # ordered by bound, 'Infinity' last
        bound = "+Inf" if math.isinf(r["le"]) else str(r["le"])
        by_type.setdefault(r["job_type"], []).append((bound, r["jobs"]))
    for job_type, buckets in by_type.items():
        duration.add_metric(
            [job_type], buckets, sum_value=values.get((job_type, "duration_seconds_sum"), 0.0)
        )
    return duration


def make_registry(open_store: Callable[[], AbstractContextManager[Store]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(open_store))
    return registry
