"""Every built-in job type: its spec and who may enqueue it.

A job type a plugin adds without a spec here takes any JSON object and is admin-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from enchant_worker.jobspecs.base import JobSpec


@dataclass(frozen=True)
class JobType:
    name: str
    spec: type[JobSpec]
    user_allowed: bool  # False: admin keys and the CLI only
    description: str = ""


def job_types() -> dict[str, JobType]:
    from enchant_worker.jobspecs import extract_scenes, maintenance

    types = [
        JobType("noop", maintenance.NoopSpec, False, "sleep metadata.seconds (tests, demos, benchmarks)"),
        JobType("data_migration", maintenance.DataMigrationSpec, False, "run a named data migration"),
        JobType("extract_scenes", extract_scenes.ExtractScenesSpec, True,
                "split a chapter into scenes with characters, locations and emotions; optionally illustrate them"),
    ]
    return {t.name: t for t in types}
