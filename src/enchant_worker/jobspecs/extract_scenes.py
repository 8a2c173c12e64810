"""`extract_scenes`: one chapter's text → scenes, characters, locations, emotions and transitions."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, field_validator

from enchant_worker.jobspecs.base import WRITE, Ref
from enchant_worker.jobspecs.text_analysis import TextAnalysisSpec

ANALYZER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"


class ExtractScenesSpec(TextAnalysisSpec):
    """`chapter_id` (write rights on its story); `analyzer` ('builtin' by default, or 'llm');
    `text_model`: the llm analyzer's model (a configs/models.toml entry with kind = "text"; default
    `default_text`, else tiny-text); `illustrate`: a generate_image job for each new scene; `steps`:
    denoising steps of those jobs."""

    chapter_id: Annotated[uuid.UUID, Ref("chapter", WRITE)]
    analyzer: str = Field(default="builtin", pattern=ANALYZER_NAME_PATTERN)
    illustrate: bool = False
    steps: int | None = Field(default=None, ge=1, le=150)

    @field_validator("analyzer")
    @classmethod
    def _known(cls, value: str) -> str:
        from enchant_worker.text.registry import known_analyzer_names

        known = known_analyzer_names()
        if value not in known:
            raise ValueError(f"unknown text analyzer; available: {', '.join(known)}")
        return value

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("chapter", self.chapter_id)
