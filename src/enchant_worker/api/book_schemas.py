"""Schemas of the scene-extraction routes: books in, chapters, scenes, characters, branches, styles,
custom fields and templates (Create / Update / Public kept apart)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMATS = Literal["text", "markdown", "epub"]
FIELD_TYPES = Literal["text", "number", "boolean", "json", "array"]
APPLIES_TO = Literal["characters", "locations", "scenes"]
ENTITY_TYPES = Literal["character", "location", "scene"]
ANALYZER_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
ANALYZER = Field(default="builtin", pattern=ANALYZER_PATTERN)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoryIngest(_In):
    """A new story from text: plain text or Markdown, split into chapters at headings."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    text: str = Field(min_length=1, description="the book's text (plain text or Markdown)")
    format: Literal["text", "markdown"] | None = None
    description: str | None = Field(default=None, max_length=10_000)
    genre: str | None = Field(default=None, max_length=200)


class ChapterIngest(_In):
    """One chapter's text; `number` replaces that chapter's text, without it the chapter goes last."""

    text: str = Field(min_length=1)
    title: str | None = Field(default=None, max_length=500)
    number: int | None = Field(default=None, ge=1, le=100_000)


class ChapterStatus(BaseModel):
    id: uuid.UUID
    number: int
    title: str | None = None
    words: int | None = None
    status: Literal["added", "changed", "unchanged"]


class BookReport(BaseModel):
    title: str | None = None
    format: str
    encoding: str
    source_hash: str
    notes: list[str] = []


class IngestReport(BaseModel):
    story_id: uuid.UUID
    title: str
    created: bool
    unchanged: bool
    book: BookReport | None = None
    chapters: list[ChapterStatus]
    jobs: list[uuid.UUID] = []


class ChapterSummary(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    chapter_number: int
    title: str | None = None
    content_hash: str | None = None
    characters: int | None = None
    scenes: int
    created_at: datetime | None = None


class ChapterPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    chapter_number: int
    title: str | None = None
    content: str | None = None
    content_hash: str | None = None
    created_at: datetime | None = None
    extraction: dict[str, Any] | None = None


class ExtractRequest(_In):
    analyzer: str = ANALYZER
    text_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description='the llm analyzer\'s model (configs/models.toml, kind = "text")',
    )
    illustrate: bool = False
    steps: int | None = Field(default=None, ge=1, le=150)


class ExtractAccepted(BaseModel):
    job_id: uuid.UUID
    chapter_id: uuid.UUID
    status: str
    message: str


class CustomValue(BaseModel):
    field_id: uuid.UUID
    field_name: str
    field_type: str | None = None
    value: Any = None
    is_default: bool


class ScenePublic(BaseModel):
    id: uuid.UUID
    chapter_id: uuid.UUID
    chapter_number: int
    scene_number: int
    title: str | None = None
    summary: str | None = None
    content: str | None = None
    emotional_tone: str | None = None
    content_start: int | None = None
    content_end: int | None = None
    analyzer: str | None = None
    revision: int | None = None
    retired_at: datetime | None = None
    location: dict[str, Any] | None = None
    image_count: int = 0
    characters: list[dict[str, Any]] = []
    custom_fields: list[CustomValue] = []


class SceneUpdate(_In):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    summary: str | None = Field(default=None, max_length=5000)
    emotional_tone: str | None = Field(default=None, max_length=100)
    comment: str | None = Field(default=None, max_length=2000)


class CharacterPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    name: str
    aliases: list[str] = []
    appearance_description: str | None = None
    personality: str | None = None
    scene_count: int = 0
    custom_fields: list[CustomValue] = []


class LocationPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    name: str
    description: str | None = None
    scene_count: int = 0
    custom_fields: list[CustomValue] = []


class CharacterUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    aliases: list[str] | None = Field(default=None, max_length=100)
    appearance_description: str | None = Field(default=None, max_length=5000)
    personality: str | None = Field(default=None, max_length=5000)


class BranchCreate(_In):
    branch_name: str = Field(min_length=1, max_length=200)
    branch_point_chapter: int = Field(ge=1, le=100_000)
    description: str | None = Field(default=None, max_length=10_000)
    is_active: bool = True


class BranchUpdate(_In):
    branch_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    is_active: bool | None = None


class BranchPublic(BaseModel):
    id: uuid.UUID
    parent_story_id: uuid.UUID
    branch_name: str
    branch_point_chapter: int
    description: str | None = None
    created_by: uuid.UUID | None = None
    is_active: bool | None = None
    created_at: datetime | None = None


class BranchStateCreate(_In):
    character_id: uuid.UUID
    chapter_number: int = Field(ge=1, le=100_000)
    appearance_description: str = Field(min_length=1, max_length=5000)
    emotional_state: str | None = Field(default=None, max_length=1000)
    branch_specific_changes: str | None = Field(default=None, max_length=5000)


class BranchStatePublic(BaseModel):
    id: uuid.UUID
    branch_id: uuid.UUID
    character_id: uuid.UUID
    character_name: str
    chapter_number: int
    appearance_description: str
    emotional_state: str | None = None
    branch_specific_changes: str | None = None
    created_at: datetime | None = None


class StoryLoraCreate(_In):
    lora_model_id: uuid.UUID
    strength: float = Field(default=0.8, ge=0.0, le=2.0)
    apply_to_scenes: list[str] = Field(
        default_factory=lambda: ["all"],
        min_length=1,
        max_length=1000,
        description="['all'] or ids of the story's scenes",
    )


class StoryLoraUpdate(_In):
    strength: float | None = Field(default=None, ge=0.0, le=2.0)
    apply_to_scenes: list[str] | None = Field(default=None, min_length=1, max_length=1000)


class StoryLoraPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    lora_model_id: uuid.UUID
    lora_name: str
    lora_status: str | None = None
    strength: float | None = None
    apply_to_scenes: list[str] | None = None
    created_at: datetime | None = None


class CustomFieldCreate(_In):
    field_name: str = Field(min_length=1, max_length=100)
    field_type: FIELD_TYPES
    default_value: Any = None
    applies_to: list[APPLIES_TO] = Field(min_length=1, max_length=3)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description='{"prompt": true} adds the values to image prompts'
    )


class CustomFieldUpdate(_In):
    field_name: str | None = Field(default=None, min_length=1, max_length=100)
    default_value: Any = None
    applies_to: list[APPLIES_TO] | None = Field(default=None, min_length=1, max_length=3)
    metadata: dict[str, Any] | None = None


class CustomFieldPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    field_name: str
    field_type: str
    default_value: Any = None
    applies_to: list[str]
    metadata: dict[str, Any] = {}
    created_at: datetime | None = None


class CustomValueSet(_In):
    entity_type: ENTITY_TYPES
    entity_id: uuid.UUID
    value: Any = Field(description="must match the field's type")


class CustomValuePublic(BaseModel):
    id: uuid.UUID
    custom_field_id: uuid.UUID
    entity_type: str
    entity_id: uuid.UUID
    field_value: Any = None
    created_at: datetime | None = None


class TemplateCreate(_In):
    entity_type: str = Field(min_length=1, max_length=50, pattern=r"^[a-z_]+$")
    template_name: str = Field(min_length=1, max_length=200)
    template_schema: dict[str, Any] = Field(description="a JSON Schema for the entity's metadata object")


class TemplatePublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID | None = None
    entity_type: str
    template_name: str
    template_schema: dict[str, Any]
    created_at: datetime | None = None


class MetadataSet(_In):
    value: Any = Field(description="any JSON value; the entity's metadata must still match its templates")
