"""`extract_scenes`: one chapter's text → scenes, characters, locations, emotions and transitions."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from enchant_worker.jobspecs.base import WRITE, JobSpec, Ref

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
        if self.analyzer != "llm":
            if self.text_model is not None:
                raise ValueError("text_model: only the llm analyzer uses a text model")
            return self
        if self.text_model is None:  # the default text model must be there too (a named one is a Ref)
            from pathlib import Path

            from enchant_worker.config import get_settings
            from enchant_worker.text.errors import AnalyzerUnavailable
            from enchant_worker.text.models import resolve_text_model

            settings = get_settings()
            try:
                resolve_text_model(Path(settings.models_dir), Path(settings.models_config), None)
            except AnalyzerUnavailable as exc:
                raise ValueError(str(exc)) from None
        return self

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("chapter", self.chapter_id)
