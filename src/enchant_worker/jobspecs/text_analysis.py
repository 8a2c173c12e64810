"""The base of jobs a text analyzer runs (`extract_scenes`, `analyze_story`): `analyzer` (each job narrows
the choice) and the `llm` analyzer's `text_model`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from enchant_worker.jobspecs.base import READ, JobSpec, Ref, Reference


class TextAnalysisSpec(JobSpec):
    analyzer: str = "builtin"
    # a configs/models.toml entry with kind = "text"; default: `default_text`, else tiny-text
    text_model: Annotated[str | None, Ref("text_model")] = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _text_model_for_llm_only(self) -> TextAnalysisSpec:
        if self.analyzer != "llm" and self.text_model is not None:
            raise ValueError("text_model: only the llm analyzer uses a text model")
        return self

    def implied_references(self) -> list[Reference]:
        """The llm analyzer with no text_model uses the configured default: it must be there too."""
        if self.analyzer == "llm" and self.text_model is None:
            return [Reference("text_model", "text_model", READ, None)]
        return []
