"""`analyze_story`: a story's quality scores, insights, pacing, suggestions and enhancement rules."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, model_validator

from enchant_worker.jobspecs.base import WRITE, JobSpec, Ref

ANALYZERS = ("builtin", "llm")


class AnalyzeStorySpec(JobSpec):
    """`story_id` (write rights: the analysis is stored with the story); `analyzer`: 'builtin' (measured
    features, no model) or 'llm' (a text model scores each scene with a reason, and proposes edits);
    `text_model`: the llm's model (a configs/models.toml entry with kind = "text"; default `default_text`,
    else tiny-text); `force`: recompute even when the content did not change since the last analysis."""

    story_id: Annotated[uuid.UUID, Ref("story", WRITE)]
    analyzer: Literal["builtin", "llm"] = "builtin"
    text_model: Annotated[str | None, Ref("text_model")] = Field(default=None, min_length=1, max_length=200)
    force: bool = False

    @model_validator(mode="after")
    def _model(self) -> AnalyzeStorySpec:
        if self.analyzer != "llm" and self.text_model is not None:
            raise ValueError("text_model: only the llm analyzer uses a text model")
        return self

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("story", self.story_id)
