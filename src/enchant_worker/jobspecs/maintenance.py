"""Specs of the operational job types (admin-only)."""

from __future__ import annotations

from pydantic import Field

from enchant_worker.jobspecs.base import JobSpec

NOOP_MAX_SECONDS = 3600.0


class NoopSpec(JobSpec):
    seconds: float = Field(default=0, ge=0, le=NOOP_MAX_SECONDS)
    fail: str | None = Field(default=None, max_length=10_000)  # raise this message (tests of retries)


class DataMigrationSpec(JobSpec):
    name: str = Field(min_length=1, max_length=200)
