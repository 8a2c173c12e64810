"""JobQueue: every read and write of processing_jobs and workers, over one psycopg connection.

A JobQueue is not thread-safe: each thread of a worker has its own (and its own connection).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker.db.connection import Connection, one
from enchant_worker.domain.jobs import Job, NewJob
from enchant_worker.errors import IdempotencyConflict, InvalidJob, JobNotFound
from enchant_worker.jobspecs.limits import MAX_IDEMPOTENCY_KEY_CHARS, check_json_limits, check_text
from enchant_worker.queue.affinity import Affinity, Warm
from enchant_worker.queue.backoff import retry_delay_s
from enchant_worker.queue.fairness import FairShare
from enchant_worker.queue.storable import storable_text
from enchant_worker.sql import q

MAX_ATTEMPTS = 1000
DEFAULT_FAIR_SHARE = FairShare()  # every group weighs 1, no caps (the worker passes the tiers' settings)
DEFAULT_AFFINITY = Affinity()


@dataclass(frozen=True)
class Lease:
    """A job's id with the token that proves this worker holds it."""

    job_id: uuid.UUID
    token: uuid.UUID

    @classmethod
    def of(cls, job: Job) -> Lease:
        """The lease of a job this worker just leased."""
        if job.lease_token is None:
            raise ValueError(f"job {job.id} is not leased")
        return cls(job.id, job.lease_token)


def _check(job: NewJob) -> None:
    """Refuses a job that cannot be stored, naming the field (its JSON encoding is checked with the batch's,
    see _batch_json)."""
    if not job.job_type or not isinstance(job.job_type, str):
        raise InvalidJob("job_type: a non-empty job type name is required")
    if not isinstance(job.metadata, dict):
        raise InvalidJob("metadata: must be a JSON object")
    if job.metadata:
        check_json_limits(job.metadata)  # depth, lengths, NUL and lone surrogates, naming the path
    if not 0 <= job.priority <= 32767:
        raise InvalidJob(f"priority: must be between 0 (most urgent) and 32767, got {job.priority}")
    if not 1 <= job.max_attempts <= MAX_ATTEMPTS:
        raise InvalidJob(f"max_attempts: must be between 1 and {MAX_ATTEMPTS}, got {job.max_attempts}")
    if job.idempotency_key is not None:  # the table's check constraint says the same
        check_text(job.idempotency_key, field="idempotency_key", max_chars=MAX_IDEMPOTENCY_KEY_CHARS)


_UUID4_BITS = (4 << 76) | (0b10 << 62)  # version 4, RFC 4122 variant
_UUID4_KEEP = ~((0xF << 76) | (0b11 << 62))


def random_ids(n: int) -> Iterator[uuid.UUID]:
    """n version-4 UUIDs from one read of the OS's randomness: uuid.uuid4() reads it once per id, which
    was a tenth of the time of enqueueing 1,000 jobs (this takes half as long)."""
    raw = os.urandom(16 * n)
    for i in range(0, 16 * n, 16):
        yield uuid.UUID(int=(int.from_bytes(raw[i : i + 16], "big") & _UUID4_KEEP) | _UUID4_BITS)


def _metadata_json(metadata: dict[str, Any]) -> str:
    try:
        return json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"metadata: cannot be stored as JSON ({exc})") from None


def _batch_json(batch: Sequence[tuple[uuid.UUID, NewJob]]) -> str:
    """The batch as one JSON array for enqueue_jobs (one C-level encode instead of ten bound arrays)."""
    rows = [
        {
            "id": str(job_id),
            "job_type": job.job_type,
            "metadata": job.metadata,
            "priority": job.priority,
            "max_attempts": job.max_attempts,
            "entity_type": job.entity_type,
            "entity_id": None if job.entity_id is None else str(job.entity_id),
            "user_id": None if job.user_id is None else str(job.user_id),
            "idempotency_key": job.idempotency_key,
            "run_after": None if job.run_after is None else job.run_after.isoformat(),
        }
        for job_id, job in batch
    ]
    try:
        return json.dumps(rows, allow_nan=False)
    except (TypeError, ValueError):
        for _, job in batch:  # find the job that cannot be encoded, to name what is wrong with it
            _metadata_json(job.metadata)
        raise


def same_request(stored: dict[str, Any], job_type: str, metadata: Any) -> bool:
    """Is the job holding an idempotency key (a row with job_type and metadata) the one asked for again?
    The one comparison for idempotent replays (JobQueue.enqueue_many and intake's submit): metadata is
    compared as JSON stores it (tuples are lists, keys are text)."""
    if stored["job_type"] != job_type:
        return False
    return bool(stored["metadata"] == metadata or stored["metadata"] == json.loads(_metadata_json(metadata)))


class JobQueue:
    def __init__(
        self,
        conn: Connection,
        *,
        lease_s: float = 60.0,
        retry_base_s: float = 2.0,
        retry_max_s: float = 600.0,
        fair_share: FairShare | None = DEFAULT_FAIR_SHARE,
        affinity: Affinity = DEFAULT_AFFINITY,
    ):
        """fair_share: the weights and caps of the fair lease; None leases strictly by priority, then
        age (ENCHANT_QUEUE_FAIR_SHARE=false). affinity: how the fair lease prefers warm jobs."""
        self.conn = conn
        self.fair_share = fair_share
        self.affinity = affinity
        self.lease_s = lease_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s

    # -- enqueue ---------------------------------------------------------------------------------

    def enqueue(self, job: NewJob) -> uuid.UUID:
        return self.enqueue_many([job])[0]

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[uuid.UUID]:
        """Inserts jobs in one statement; returns their ids in order. An idempotency key belongs to the
        job's user: the same (user, key) twice, in this batch or from before, yields the one existing
        job's id, and `IdempotencyConflict` when that job has another type or metadata."""
        for job in jobs:
            _check(job)
        ids: list[uuid.UUID] = []  # chosen here, so nothing relies on the order of returned rows
        batch: list[tuple[uuid.UUID, NewJob]] = []
        first_of_key: dict[tuple[uuid.UUID | None, str], uuid.UUID] = {}
        new_ids = random_ids(len(jobs))
        for job in jobs:
            key = (job.user_id, job.idempotency_key) if job.idempotency_key is not None else None
            if key in first_of_key:
                ids.append(first_of_key[key])  # the same key twice in one batch
                continue
            job_id = next(new_ids)
            ids.append(job_id)
            batch.append((job_id, job))
            if key is not None:
                first_of_key[key] = job_id
        if not batch:
            return ids
        if not first_of_key and all(job.run_after is None for _, job in batch):
            self._copy(batch)  # the common batch: the server's fastest path
            return ids
        statement = "enqueue_jobs_keyed" if first_of_key else "enqueue_jobs"
        self.conn.execute(q(statement), {"jobs": _batch_json(batch)})
        if not first_of_key:
            return ids
        # A key enqueued before this batch keeps its job: ours was not inserted.
        holders = {
            (r["user_id"], r["idempotency_key"]): r
            for r in self.conn.execute(
                q("jobs_by_idempotency_key"),
                {"users": [u for u, _ in first_of_key], "keys": [k for _, k in first_of_key]},
            )
        }
        out = []
        for job_id, job in zip(ids, jobs, strict=True):
            if (
                job.idempotency_key is None
                or (holder := holders.get((job.user_id, job.idempotency_key))) is None
            ):
                out.append(job_id)
                continue
            if not same_request(holder, job.job_type, job.metadata):
                raise IdempotencyConflict(job.idempotency_key, holder["id"])
            out.append(holder["id"])
        return out

    def _copy(self, batch: Sequence[tuple[uuid.UUID, NewJob]]) -> None:
        """COPY a batch with no idempotency keys and no run_after (so the server's NOW() applies, not this
        host's clock): one statement, so the statement triggers notify once per job type and count once,
        as for enqueue_jobs (measured: ~15% less server time than an INSERT of the same rows)."""
        with self.conn.cursor().copy(q("enqueue_jobs_copy")) as copy:
            for job_id, job in batch:
                copy.write_row(
                    (
                        job_id,
                        job.job_type,
                        _metadata_json(job.metadata) if job.metadata else "{}",
                        job.priority,
                        job.max_attempts,
                        job.entity_type,
                        job.entity_id,
                        job.user_id,
                    )
                )

    # -- the lease and its writes ----------------------------------------------------------------

    def lease(
        self,
        worker_id: str,
        job_types: Iterable[str],
        limit: int = 1,
        *,
        start: bool = True,
        warm: Warm | None = None,
    ) -> list[Job]:
        """Leases up to `limit` jobs, each counted as an attempt. With start=False (a prefetched batch)
        they are held, not started: a job the worker never starts goes back without spending its attempt
        if the worker dies (mark_started, or the heartbeat, records that one started). `warm`: what the
        worker has resident; the fair lease prefers jobs that need nothing loaded (README "Affinity")."""
        params = {
            "worker": worker_id,
            "types": list(job_types),
            "limit": limit,
            "lease_s": self.lease_s,
            "start": start,
        }
        if self.fair_share is None:
            rows = self.conn.execute(q("lease_jobs"), params).fetchall()
        else:
            params |= self.fair_share.params() | self.affinity.params(warm, limit)
            rows = self.conn.execute(q("lease_jobs_fair"), params).fetchall()
        jobs = [Job.from_row(r) for r in rows]
        jobs.sort(key=lambda j: (j.priority, j.created_at))
        return jobs

    def lease_companions(self, worker_id: str, head: Lease, limit: int) -> list[Job]:
        """Leases up to `limit` pending generate_image jobs that may share the head's pipeline call (the
        same batch key), held unstarted like a prefetch; none when the head's lease was lost."""
        if limit < 1:
            return []
        fair = self.fair_share or DEFAULT_FAIR_SHARE
        rows = self.conn.execute(
            q("lease_batch_companions"),
            {
                "worker": worker_id,
                "id": head.job_id,
                "token": head.token,
                "limit": limit,
                "lease_s": self.lease_s,
                "caps": self.fair_share is not None,
                **{k: v for k, v in fair.params().items() if k in ("tier_names", "tier_caps")},
            },
        ).fetchall()
        jobs = [Job.from_row(r) for r in rows]
        jobs.sort(key=lambda j: (j.priority, j.created_at))
        return jobs

    def extend(
        self,
        leases: Sequence[Lease],
        progress: dict[uuid.UUID, dict[str, Any]] | None = None,
        started: Collection[uuid.UUID] = (),
    ) -> dict[uuid.UUID, bool]:
        """Renews the leases and marks the jobs in `started` as running; returns {job id: cancel
        requested} for the jobs still held."""
        if not leases:
            return {}
        progress = progress or {}
        rows = self.conn.execute(
            q("extend_leases"),
            {
                "lease_s": self.lease_s,
                "ids": [le.job_id for le in leases],
                "tokens": [le.token for le in leases],
                "percents": [progress.get(le.job_id, {}).get("percent") for le in leases],
                "infos": [_jsonb(progress.get(le.job_id, {}).get("info")) for le in leases],
                "started": [le.job_id in started for le in leases],
            },
        ).fetchall()
        return {r["id"]: r["cancel_requested"] for r in rows}

    def mark_started(self, lease: Lease) -> bool:
        """Records that the job's handler starts now; False when the lease was lost."""
        return (
            self.conn.execute(q("mark_started"), {"id": lease.job_id, "token": lease.token}).fetchone()
            is not None
        )

    def complete(self, lease: Lease, result: dict[str, Any] | None = None) -> bool:
        return bool(self.complete_many([(lease, result)]))

    def complete_many(self, done: Sequence[tuple[Lease, dict[str, Any] | None]]) -> set[uuid.UUID]:
        """Completes jobs in one statement; returns the ids completed (those whose lease still held)."""
        if not done:
            return set()
        rows = self.conn.execute(
            q("complete_jobs"),
            {
                "ids": [le.job_id for le, _ in done],
                "tokens": [le.token for le, _ in done],
                "results": [_jsonb(r) for _, r in done],
            },
        ).fetchall()
        return {r["id"] for r in rows}

    def complete_and_lease(
        self,
        done: Sequence[tuple[Lease, dict[str, Any] | None]],
        worker_id: str,
        job_types: Iterable[str],
        limit: int,
        warm: Warm | None = None,
    ) -> tuple[set[uuid.UUID], list[Job]]:
        """Completes finished jobs and leases (prefetches, start=False) the next batch in one
        transaction: for short jobs the commit (a WAL flush) is the main cost, and this pays it once per
        batch instead of twice."""
        with self.conn.transaction():
            completed = self.complete_many(done)
            return completed, self.lease(worker_id, job_types, limit, start=False, warm=warm)

    def fail(
        self,
        lease: Lease,
        error: str,
        *,
        attempt: int,
        retry: bool = True,
        result: dict[str, Any] | None = None,
    ) -> str | None:
        """Records a handler error. Returns the new status ('pending' when it will be retried,
        'failed' otherwise), or None when the lease was lost and nothing was written. The error text is
        made storable (no NUL, lone surrogates escaped): a message must never keep a job from failing."""
        delay = retry_delay_s(attempt, self.retry_base_s, self.retry_max_s)
        row = self.conn.execute(
            q("fail_job"),
            {
                "id": lease.job_id,
                "token": lease.token,
                "error": storable_text(error),
                "retry": retry,
                "delay_s": delay,
                "result": _jsonb(result),
            },
        ).fetchone()
        return row["status"] if row else None

    def finish_cancelled(self, lease: Lease, result: dict[str, Any] | None = None) -> bool:
        row = self.conn.execute(
            q("finish_cancelled"),
            {
                "id": lease.job_id,
                "token": lease.token,
                "result": _jsonb(result),
            },
        ).fetchone()
        return row is not None

    def release(
        self, leases: Sequence[Lease], results: dict[uuid.UUID, dict[str, Any]] | None = None
    ) -> set[uuid.UUID]:
        """Hands jobs back to pending without spending an attempt."""
        if not leases:
            return set()
        results = results or {}
        rows = self.conn.execute(
            q("release_jobs"),
            {
                "ids": [le.job_id for le in leases],
                "tokens": [le.token for le in leases],
                "results": [_jsonb(results.get(le.job_id)) for le in leases],
            },
        ).fetchall()
        return {r["id"] for r in rows}

    def reap(self) -> list[dict[str, Any]]:
        """Takes back jobs whose lease expired; returns [{id, status, started, leased_by}] of those
        reaped (started: it had run, so the attempt was spent; else it went back unspent)."""
        return self.conn.execute(q("reap_expired")).fetchall()

    # -- administration --------------------------------------------------------------------------

    def get(self, job_id: uuid.UUID | str) -> Job:
        row = self.conn.execute(q("get_job"), {"id": _uuid(job_id)}).fetchone()
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return Job.from_row(row)

    def list(self, *, status: str | None = None, job_type: str | None = None, limit: int = 50) -> list[Job]:
        rows = self.conn.execute(q("list_jobs"), {"status": status, "job_type": job_type, "limit": limit})
        return [Job.from_row(r) for r in rows]

    def cancel(self, job_id: uuid.UUID | str) -> str:
        """Returns 'cancelled' (was pending) or 'processing' (its worker was asked to stop)."""
        row = self.conn.execute(q("cancel_job"), {"id": _uuid(job_id)}).fetchone()
        if row is None:
            job = self.get(job_id)
            raise InvalidJob(
                f"job {job_id} is already {job.status}; only pending or running jobs can be cancelled"
            )
        return str(row["status"])

    def retry(self, job_id: uuid.UUID | str) -> None:
        if self.conn.execute(q("retry_job"), {"id": _uuid(job_id)}).fetchone() is None:
            job = self.get(job_id)
            raise InvalidJob(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")

    def set_priority(self, job_id: uuid.UUID | str, priority: int) -> None:
        if not 0 <= priority <= 32767:
            raise InvalidJob(f"priority: must be between 0 and 32767, got {priority}")
        if (
            self.conn.execute(q("set_priority"), {"id": _uuid(job_id), "priority": priority}).fetchone()
            is None
        ):
            job = self.get(job_id)
            raise InvalidJob(f"job {job_id} is already {job.status}; its priority can no longer change")

    def should_yield(self, job: Job, urgent_types: Sequence[str], wait_s: float, alive_s: float) -> bool:
        """Should this long job hand its worker to urgent work of `urgent_types` (the `should_yield` query of queue.sql)?"""
        row = one(
            self.conn.execute(
                q("should_yield"),
                {
                    "types": list(urgent_types),
                    "priority": job.priority,
                    "wait_s": wait_s,
                    "alive_s": alive_s,
                    "job_type": job.job_type,
                    "id": job.id,
                    "started_at": job.started_at,
                },
            )
        )
        return bool(row["yield"])

    # -- workers ---------------------------------------------------------------------------------

    def register_worker(
        self,
        worker_id: str,
        *,
        host: str,
        pid: int,
        job_types: Sequence[str],
        device: dict[str, Any],
        concurrency: int,
    ) -> None:
        self.conn.execute(
            q("register_worker"),
            {
                "id": worker_id,
                "host": host,
                "pid": pid,
                "job_types": list(job_types),
                "device": Jsonb(device),
                "concurrency": concurrency,
            },
        )

    def worker_heartbeat(
        self,
        worker_id: str,
        job_ids: Sequence[uuid.UUID],
        *,
        status: str = "running",
        completed: int = 0,
        failed: int = 0,
        resident: Warm | None = None,
    ) -> None:
        self.conn.execute(
            q("worker_heartbeat"),
            {
                "id": worker_id,
                "job_ids": list(job_ids),
                "status": status,
                "completed": completed,
                "failed": failed,
                "resident": Jsonb((resident or Warm()).describe()),
            },
        )


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise JobNotFound(f"{value!r} is not a job id (a UUID such as 3f2b1c4e-...)") from None
