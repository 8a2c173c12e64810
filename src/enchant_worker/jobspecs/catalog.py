"""Every built-in job type: its spec and who may enqueue it.

A job type a plugin adds without a spec here takes any JSON object and is admin-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from enchant_worker.jobspecs.base import JobSpec


@dataclass(frozen=True)
class JobType:
    name: str
    spec: type[JobSpec]
    user_allowed: bool  # False: admin keys and the CLI only
    description: str = ""
    priority: int = 5  # when the caller sets none (lower runs first)
    max_attempts: int = 3


@cache
def job_types() -> dict[str, JobType]:
    from enchant_worker.jobspecs import (
        analyze_story,
        export_story,
        extract_scenes,
        generate_image,
        maintenance,
        train_lora,
    )

    types = [
        JobType(
            "generate_image",
            generate_image.GenerateImageSpec,
            True,
            "illustrate a scene or a prompt with Stable Diffusion and LoRA styles",
        ),
        # Worse than generate_image's 5: a waiting illustration preempts training.
        JobType("train_lora", train_lora.LoRATrainingSpec, True, "train a LoRA style", priority=8),
        JobType("noop", maintenance.NoopSpec, False, "sleep metadata.seconds (tests, demos, benchmarks)"),
        JobType("data_migration", maintenance.DataMigrationSpec, False, "run a named data migration"),
        JobType(
            "export_story",
            export_story.ExportStorySpec,
            True,
            "export a story as pdf, epub, html, json or video",
        ),
        JobType(
            "extract_scenes",
            extract_scenes.ExtractScenesSpec,
            True,
            "split a chapter into scenes with characters, locations and emotions; optionally illustrate them",
        ),
        JobType(
            "analyze_story",
            analyze_story.AnalyzeStorySpec,
            True,
            "score a story's scenes, its pacing and characters; suggestions and enhancement rules",
        ),
    ]
    return {t.name: t for t in types}
