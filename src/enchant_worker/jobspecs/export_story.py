"""Spec of `export_story`: the seed's ExportOptions (section 7) plus a page size for PDF."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from enchant_worker.jobspecs.base import READ, JobSpec, Ref

FORMATS = ("pdf", "epub", "html", "json", "video")
IMAGE_QUALITIES = ("thumbnail", "medium", "high")
LAYOUTS = ("text-with-images", "gallery", "comic-style")
PAGE_SIZES = ("A4", "Letter", "A5")
CSS_MAX_CHARS = 20_000


class ExportOptionsSpec(JobSpec):
    """How to export: the seed's ExportOptions (its camelCase names are accepted too), plus the page size
    of a PDF, single-file or folder HTML, the book's language, and the video's frame size and pace.
    (The body of `POST /v1/stories/{id}/exports`.)"""

    format: Literal["pdf", "epub", "html", "json", "video"]
    include_images: bool = Field(True, alias="includeImages")
    image_quality: Literal["thumbnail", "medium", "high"] = Field("medium", alias="imageQuality")
    layout: Literal["text-with-images", "gallery", "comic-style"] = "text-with-images"
    custom_styling: str | None = Field(None, alias="customStyling", max_length=CSS_MAX_CHARS)
    page_size: Literal["A4", "Letter", "A5"] = Field("A4", alias="pageSize")
    html_mode: Literal["single", "folder"] = Field("single", alias="htmlMode")
    language: str = Field("en", pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
    video_resolution: Literal["480p", "720p", "1080p"] = Field("720p", alias="videoResolution")
    scene_seconds: float = Field(4.0, alias="sceneSeconds", ge=1.0, le=30.0)

    model_config = {**JobSpec.model_config, "populate_by_name": True}


class ExportStorySpec(ExportOptionsSpec):
    """The `export_story` job's metadata: the options and the story."""

    story_id: Annotated[uuid.UUID, Ref("story", READ)]

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("story", self.story_id)
