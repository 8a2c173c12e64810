"""`extract_scenes`: one chapter's text → scenes, characters, locations, emotions and transitions."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from enchant_worker.jobspecs.base import READ, WRITE, JobSpec, Ref, Reference

ANALYZER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"


class ExtractScenesSpec(JobSpec):
    """`chapter_id` (write rights on its story); `analyzer` ('builtin' by default, or 'llm');
    `text_model`: the llm analyzer's model (a configs/models.toml entry with kind = "text"; default
    `default_text`, else tiny-text); `illustrate`: a generate_image job for each new scene; `steps`:
    denoising steps of those jobs."""

    chapter_id: Annotated[uuid.UUID, Ref("chapter", WRITE)]
    analyzer: str = Field(default="builtin", pattern=ANALYZER_NAME_PATTERN)
    text_model: Annotated[str | None, Ref("text_model")] = Field(default=None, min_length=1, max_length=200)
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

    @model_validator(mode="after")
    def _model(self) -> ExtractScenesSpec:
        if self.analyzer != "llm" and self.text_model is not None:
            raise ValueError("text_model: only the llm analyzer uses a text model")
        return self

    def implied_references(self) -> list[Reference]:
        """The llm analyzer with no text_model uses the configured default: it must be there too."""
        if self.analyzer == "llm" and self.text_model is None:
            return [Reference("text_model", "text_model", READ, None)]
        return []

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("chapter", self.chapter_id)
