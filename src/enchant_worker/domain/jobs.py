"""The job as the queue hands it out, and its states."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue. Only `job_type` is required; the rest has the table's defaults."""

    job_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    priority: int = 5
    max_attempts: int = 3
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    run_after: datetime | None = None


@dataclass(frozen=True)
class Job:
    """A row of processing_jobs. A leased job carries the lease token that guards its writes."""

    id: uuid.UUID
    job_type: str
    status: JobStatus
    metadata: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    lease_token: uuid.UUID | None = None
    leased_by: str | None = None
    progress_percent: int = 0
    progress: dict[str, Any] | None = None  # the details a running handler reported (step, loss, eta_s...)
    cancel_requested: bool = False
    result: dict[str, Any] | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    errors: int = 0
    crashes: int = 0
    run_started: bool = False  # the handler of this lease has started (see migration 0013)
    unstarted_reaps: int = 0  # times a dead worker's lease was taken back before the job started
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    run_after: datetime | None = None
    heartbeat_at: datetime | None = None
    lease_expires_at: datetime | None = None
    # generate_image only: the model and '<model>|<lora>' keys the database derived (migration 0092)
    affinity_model: str | None = None
    affinity_loras: list[str] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        known = cls.__dataclass_fields__
        values = {k: v for k, v in row.items() if k in known}
        values["status"] = JobStatus(values["status"])
        values["metadata"] = values.get("metadata") or {}
        return cls(**values)
