"""`analyze_story`: a story's quality scores, insights, pacing, suggestions and enhancement rules."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from enchant_worker.jobspecs.base import WRITE, Ref
from enchant_worker.jobspecs.text_analysis import TextAnalysisSpec

ANALYZERS = ("builtin", "llm")


class AnalyzeStorySpec(TextAnalysisSpec):
    """`story_id` (write rights: the analysis is stored with the story); `analyzer`: 'builtin' (measured
    features, no model) or 'llm' (a text model scores each scene with a reason, and proposes edits);
    `text_model`: the llm's model (a configs/models.toml entry with kind = "text"; default `default_text`,
    else tiny-text); `force`: recompute even when the content did not change since the last analysis."""

    story_id: Annotated[uuid.UUID, Ref("story", WRITE)]
    analyzer: Literal["builtin", "llm"] = "builtin"
    force: bool = False

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("story", self.story_id)
