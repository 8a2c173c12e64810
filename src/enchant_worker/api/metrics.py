"""Prometheus metrics, read from the database at each scrape (so every API process reports the same
numbers, and a scrape shows the whole fleet, not one process)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from enchant_worker.api.store import Store
from enchant_worker.domain.jobs import JobStatus

log = logging.getLogger(__name__)

DURATION_BUCKETS_S = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0]
MB = 2**20


class QueueCollector(Collector):
    def __init__(self, open_store: Callable[[], object]):
        self.open_store = open_store  # a context manager giving a Store

    def collect(self) -> Iterator:
        with self.open_store() as store:
            yield from self._queue(store)
            yield from self._workers(store)
            yield from self._costs(store)

    def _costs(self, store: Store) -> Iterator:
        cost = CounterMetricFamily("enchant_image_cost", "What users' images cost, by provider (cost_per_image in "
                                   "configs/providers.toml; local is 0)", labels=["user_id", "provider"])
        images = CounterMetricFamily("enchant_images_generated", "Images of completed generate_image jobs",
                                     labels=["user_id", "provider"])
        for r in store.image_costs():
            cost.add_metric([r["user_id"], r["provider"] or ""], r["cost"])
            images.add_metric([r["user_id"], r["provider"] or ""], r["images"] or 0)
        yield from (cost, images)

    def _queue(self, store: Store) -> Iterator:
        depth = GaugeMetricFamily("enchant_queue_jobs", "Jobs by status and job type", labels=["status", "job_type"])
        seen_types = set()
        for r in store.queue_counts():
            depth.add_metric([r["status"], r["job_type"]], r["n"])
            seen_types.add(r["job_type"])
        yield depth

        oldest = GaugeMetricFamily("enchant_queue_oldest_pending_seconds", "Age of the oldest runnable pending job",
                                   labels=["job_type"])
        for r in store.oldest_pending():
            oldest.add_metric([r["job_type"]], r["age_s"])
        yield oldest

        finished = CounterMetricFamily("enchant_jobs_finished", "Jobs finished, by outcome",
                                       labels=["job_type", "status"])
        errors = CounterMetricFamily("enchant_job_errors", "Handler exceptions (each failed attempt)",
                                     labels=["job_type"])
        crashes = CounterMetricFamily("enchant_job_crashes", "Leases that expired (worker died or hung)",
                                      labels=["job_type"])
        failures = CounterMetricFamily("enchant_jobs_failed", "Jobs that failed for good", labels=["job_type"])
        for r in store.job_totals():
            for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
                finished.add_metric([r["job_type"], s.value], r[s.value])
            failures.add_metric([r["job_type"]], r["failed"])
            errors.add_metric([r["job_type"]], r["errors"])
            crashes.add_metric([r["job_type"]], r["crashes"])
        yield from (finished, failures, errors, crashes)

        duration = HistogramMetricFamily("enchant_job_duration_seconds", "Run time of completed jobs (last attempt)",
                                         labels=["job_type"])
        for r in store.duration_histogram(DURATION_BUCKETS_S):
            buckets = [(str(b), n) for b, n in zip(DURATION_BUCKETS_S, r["buckets"], strict=True)]
            duration.add_metric([r["job_type"]], buckets + [("+Inf", r["n"])], sum_value=r["total_s"])
        yield duration

    def _workers(self, store: Store) -> Iterator:
        heartbeat = GaugeMetricFamily("enchant_worker_last_heartbeat_timestamp_seconds",
                                      "When the worker last sent a heartbeat (Unix time)", labels=["worker", "host"])
        age = GaugeMetricFamily("enchant_worker_heartbeat_age_seconds", "Seconds since the worker's last heartbeat",
                                labels=["worker", "host"])
        running = GaugeMetricFamily("enchant_worker_running_jobs", "Jobs the worker runs now", labels=["worker"])
        done = CounterMetricFamily("enchant_worker_jobs", "Jobs the worker finished", labels=["worker", "outcome"])
        gpu_total = GaugeMetricFamily("enchant_worker_gpu_memory_total_bytes", "GPU memory of the worker's device",
                                      labels=["worker", "device"])
        gpu_used = GaugeMetricFamily("enchant_worker_gpu_memory_used_bytes", "GPU memory in use, as last reported",
                                     labels=["worker", "device"])
        for w in store.workers():
            labels = [w["id"], w["host"]]
            heartbeat.add_metric(labels, w["heartbeat_at"].timestamp())
            age.add_metric(labels, w["heartbeat_age_s"])
            running.add_metric([w["id"]], len(w["current_jobs"]))
            done.add_metric([w["id"], "completed"], w["jobs_completed"])
            done.add_metric([w["id"], "failed"], w["jobs_failed"])
            device = w["device"] if isinstance(w["device"], dict) else {}
            name = str(device.get("name") or device.get("kind") or "unknown")
            for family, key in ((gpu_total, "memory_total"), (gpu_used, "memory_used"), (gpu_used, "memory_allocated")):
                value = device.get(f"{key}_mb")
                if isinstance(value, int | float):
                    family.add_metric([w["id"], name], value * MB)
                    if family is gpu_used:
                        break
        yield from (heartbeat, age, running, done, gpu_total, gpu_used)


def make_registry(open_store: Callable[[], object]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(open_store))
    return registry
