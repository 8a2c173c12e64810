"""`extract_scenes`: one chapter's text → scenes, characters, locations, emotions and transitions."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from enchant_worker.jobspecs.base import WRITE, JobSpec, Ref

ANALYZER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"


class ExtractScenesSpec(JobSpec):
    """`chapter_id` (write rights on its story); `analyzer` ('builtin' by default); `illustrate`: enqueue
    a generate_image job for each new scene; `steps`: denoising steps of those jobs."""

    entity_kinds: ClassVar[dict[str, str]] = {"chapter": "chapter"}

    chapter_id: Annotated[uuid.UUID, Ref("chapter", WRITE)]
    analyzer: str = Field(default="builtin", pattern=ANALYZER_NAME_PATTERN)
    illustrate: bool = False
    steps: int | None = Field(default=None, ge=1, le=150)

    @field_validator("analyzer")
    @classmethod
    def _known(cls, value: str) -> str:
        from enchant_worker.text.registry import NOT_AVAILABLE, known_analyzer_names

        if value in NOT_AVAILABLE:
            raise ValueError(NOT_AVAILABLE[value])
        known = known_analyzer_names()
        if value not in known:
            raise ValueError(f"unknown text analyzer; available: {', '.join(known)}")
        return value
