"""Request and response bodies: separate Create / Update / Public schemas per resource."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from enchant_worker.domain.jobs import JobStatus
from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs.limits import (
    LONE_SURROGATE,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JSON_DEPTH,
    check_json_limits,
)


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def _storable_text(text: str) -> str:
    _no_nul(text)
    if LONE_SURROGATE.search(text):  # JSON text such as "\\udce9": valid JSON, but not Unicode
        raise ValueError("text must be valid Unicode (it holds a lone surrogate)")
    return text


def storable_json(value: Any, depth: int = 0) -> Any:
    """Postgres jsonb refuses NUL characters, lone surrogates and numbers it cannot represent; say so up
    front."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _storable_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable_text(k)
            storable_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            storable_json(v, depth + 1)
    return value


def bounded_json(field: str) -> Callable[[Any], Any]:
    """A validator for caller-supplied JSON: `check_json_limits` (depth, string lengths, storable text;
    its message names the path, e.g. `metadata.a.b`), then finite numbers."""

    def check(value: Any) -> Any:
        try:
            check_json_limits(value, field=field)
        except InvalidJob as exc:
            raise ValueError(str(exc)) from None
        return storable_json(value)

    return check


Text = Annotated[str, AfterValidator(_no_nul)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
Priority = Annotated[int, Field(ge=0, le=32767, description="0 is most urgent; default 5")]
EntityType = Literal[
    "story", "chapter", "scene", "character", "location", "branch", "image", "lora_model", "user"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- jobs ------------------------------------------------------------------------------------------


class JobCreate(Strict):
    job_type: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")]
    metadata: Annotated[dict[str, Any], AfterValidator(bounded_json("metadata"))] = Field(
        default_factory=dict, description="the job's input, validated per job type"
    )
    priority: Priority | None = Field(
        default=None,
        description="0 is most urgent; default: the job type's "
        "(5; train_lora 8), never more urgent than the caller's tier allows",
    )
    max_attempts: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="tries before the job fails; default: the job type's (3), capped by the tier",
    )
    entity_type: EntityType | None = None
    entity_id: uuid.UUID | None = None
    idempotency_key: (
        Annotated[str, Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS), AfterValidator(_no_nul)]
        | None
    ) = None


class JobUpdate(Strict):
    priority: Priority


class JobPublic(BaseModel):
    id: uuid.UUID
    job_type: str
    status: JobStatus
    metadata: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    errors: int
    crashes: int
    entity_type: str | None
    entity_id: uuid.UUID | None
    story_id: uuid.UUID | None = None
    user_id: uuid.UUID | None
    progress_percent: int
    progress: dict[str, Any] | None
    cancel_requested: bool
    leased_by: str | None
    result: dict[str, Any] | None
    error_message: str | None
    idempotency_key: str | None
    run_after: datetime
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    heartbeat_at: datetime | None
    stage: str | None = Field(
        None,
        description="what the job is doing: queued, waiting to retry, the stage a "
        "running job reported (loading model, denoising, decoding, "
        "saving; preparing data, caching latents, training, checkpointing, exporting, preview), "
        "or done / failed / cancelled",
    )

    @model_validator(mode="after")
    def _fill_stage(self) -> JobPublic:
        if self.stage is None:
            self.stage = job_stage(self.status, self.progress, self.run_after, self.attempts)
        return self


class JobBulk(Strict):
    """A bulk action on the jobs that match the filters (an admin's)."""

    action: Literal["cancel", "retry"]
    status: JobStatus | None = None
    job_type: Annotated[str, Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    user_id: uuid.UUID | None = None
    story_id: uuid.UUID | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 1000


class JobSkipped(BaseModel):
    id: uuid.UUID
    status: str


class JobBulkResult(BaseModel):
    action: str
    matched: int = Field(description="jobs that matched the filters (at most `limit`)")
    changed: list[uuid.UUID]
    skipped: list[JobSkipped] = Field(description="jobs in a state the action does not apply to")


def job_stage(status: str, progress: dict[str, Any] | None, run_after: datetime | None, attempts: int) -> str:
    """One word or two for a job's state, the same for every job type once it has finished."""
    status = getattr(status, "value", status)
    if status == "pending":
        return (
            "waiting to retry"
            if attempts and run_after and run_after > datetime.now(run_after.tzinfo)
            else "queued"
        )
    if status == "processing":
        stage = progress.get("stage") if isinstance(progress, dict) else None
        return str(stage) if stage else "running"
    return {"completed": "done"}.get(status, status)


class JobPage(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


# -- queue and workers -----------------------------------------------------------------------------


class TypeCounts(BaseModel):
    job_type: str
    counts: dict[str, int] = Field(description="jobs per status")
    oldest_pending_age_s: float | None
    p50_run_s: float | None
    p95_run_s: float | None
    completed_in_window: int


class ThroughputPoint(BaseModel):
    minute: datetime
    completed: int
    failed: int


class QueueStats(BaseModel):
    window_minutes: int
    totals: dict[str, int] = Field(description="jobs per status, all types")
    oldest_pending_age_s: float | None
    by_type: list[TypeCounts]
    throughput: list[ThroughputPoint]


class WorkerJob(BaseModel):
    id: uuid.UUID
    job_type: str
    progress_percent: int
    progress: dict[str, Any] | None = None
    lease_age_s: float | None
    lease_expires_in_s: float | None


class WorkerPublic(BaseModel):
    id: str
    host: str
    pid: int
    status: str
    job_types: list[str]
    device: dict[str, Any]
    resident: dict[str, Any] = {}  # job keys of the models and LoRAs it has loaded (README "Affinity")
    gpu_memory_total_mb: float | None
    gpu_memory_used_mb: float | None
    concurrency: int
    current_jobs: list[WorkerJob]
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    jobs_completed: int
    jobs_failed: int


# -- LoRAs -----------------------------------------------------------------------------------------


class LoraPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    name: str
    description: str | None
    model_file_url: str = Field(
        description="where the trained file downloads (the same URL before, during "
        "and after training; 409 until the LoRA is ready)"
    )
    trigger_words: list[str] | None
    strength_range: dict[str, Any] | None
    training_images_count: int | None
    status: str | None = Field(description="queued (its job waits), training, ready or failed")
    is_public: bool | None
    download_count: int | None
    created_at: datetime | None
    training_job_id: uuid.UUID | None = Field(None, description="the job that trains (or trained) it")
    error_message: str | None = None
    base_model: str | None = Field(None, description="the model it is trained on")
    preview_url: str | None = Field(None, description="the preview image's file, once training made one")


class UserTier(BaseModel):
    id: uuid.UUID
    email: str | None
    subscription_tier: str
    quota_overrides: dict[str, int]
    effective: dict[str, int] = Field(
        description="the tier's limits with the overrides applied (0: no limit)"
    )
    usage_today: dict[str, int]
    active_jobs: int


class TierUpdate(Strict):
    subscription_tier: Literal["free", "pro", "enterprise"] | None = None
    quota_overrides: dict[str, Any] | None = None


class UploadPublic(BaseModel):
    id: uuid.UUID
    purpose: str
    folder: str = Field(description="relative to storage; a job may also name the upload by this path")
    file_count: int
    total_bytes: int
    created_at: datetime


class LoraTrainingStarted(BaseModel):
    lora: LoraPublic
    job_id: uuid.UUID


# -- presets ---------------------------------------------------------------------------------------


class PresetCreate(Strict):
    name: Name
    description: Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)] | None = None
    provider: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)] = "local"
    model_name: Name
    parameters: JsonObject = Field(
        default_factory=dict, description="generation parameters (steps, cfg_scale...)"
    )
    style_modifiers: list[Annotated[str, Field(max_length=200), AfterValidator(_no_nul)]] = Field(
        default_factory=list, max_length=50
    )
    is_public: bool = False


class PresetUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)] | None = None
    provider: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)] | None = None
    model_name: Name | None = None
    parameters: JsonObject | None = None
    style_modifiers: list[Annotated[str, Field(max_length=200), AfterValidator(_no_nul)]] | None = Field(
        default=None, max_length=50
    )
    is_public: bool | None = None


class PresetPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    name: str
    description: str | None
    provider: str
    model_name: str
    parameters: dict[str, Any]
    style_modifiers: list[str] | None
    is_public: bool | None
    usage_count: int | None
    created_at: datetime | None


# -- images, models, providers, stories ------------------------------------------------------------


class ImagePublic(BaseModel):
    id: uuid.UUID
    scene_id: uuid.UUID | None
    story_id: uuid.UUID | None
    user_id: uuid.UUID | None
    job_id: uuid.UUID | None
    provider: str
    model_name: str | None
    prompt: str | None
    negative_prompt: str | None
    seed: int | None
    parameters: dict[str, Any]
    width: int | None
    height: int | None
    content_hash: str | None
    timings: dict[str, Any]
    quality_score: float | None = Field(
        None,
        description="technical quality 0-1 (exposure, contrast, sharpness; 0 for a black, blank or NaN "
        "image); null where not analysed",
    )
    quality: dict[str, Any] | None = Field(
        None,
        description="the analysis: measures, flags, prompt alignment (CLIP) or why it was skipped, "
        "re-generation tries",
    )
    created_at: datetime
    file_url: str


class ModelPublic(BaseModel):
    name: str
    family: str | None
    description: str | None
    default: bool
    available: bool = Field(description="weights on disk (or built locally on first use)")
    defaults: dict[str, Any]
    loaded_on: list[str] = Field(description="workers that report this model loaded")


class ProviderPublic(BaseModel):
    name: str
    load_error: str | None
    served_by: list[str] = Field(description="live workers serving generate_image")


# -- stories and preferences -----------------------------------------------------------------------

StoryText = Annotated[str, Field(max_length=10_000), AfterValidator(_no_nul)]
Label = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]
MAX_PREFERENCES_BYTES = 16 * 1024
MAX_PREFERENCE_KEYS = 100


class StoryUpdate(Strict):
    """The story's descriptive fields to change; a field left out is unchanged, `null` clears it (except
    the title). The change is recorded in the story's edit history, with `comment`."""

    title: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)] | None = None
    description: StoryText | None = None
    genre: Label | None = None
    style_preference: Label | None = Field(None, description="e.g. 'artistic'; guides provider choice")
    comment: Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)] | None = Field(
        None, description="why: stored with the edit history entry, not on the story"
    )

    @field_validator("title")
    @classmethod
    def _title_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a story needs a title (it cannot be null)")
        return value


class StoryPublic(BaseModel):
    """A story's metadata, as the prompt builder reads it (cached up to an hour; a change made through
    the API shows at once)."""

    id: uuid.UUID
    user_id: uuid.UUID | None
    title: str
    description: str | None
    genre: str | None
    style_preference: str | None
    created_at: datetime | None
    updated_at: datetime | None


class PreferencesUpdate(BaseModel):
    """The caller's preferences: a JSON object of at most 16 KiB and 100 keys, replacing the stored one.
    Keys other than those below are kept as given (the web app's settings)."""

    model_config = ConfigDict(extra="allow")

    style_preference: Label | None = Field(None, description="e.g. 'artistic'; guides provider choice")


CollaboratorRole = Literal["owner", "editor", "contributor", "viewer"]
Comment = Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)]


class CollaboratorPermissions(Strict):
    """Rights granted beyond the role's (viewer: read; contributor and editor: read and write; owner:
    read, write and admin): `true` grants the right, `false` withdraws one granted earlier (a right the
    role itself gives cannot be withdrawn: choose another role). A key left out is unchanged."""

    read: bool | None = None
    write: bool | None = None
    admin: bool | None = None


class CollaboratorCreate(Strict):
    """Invite an existing user, named by `user_id` or by `email` (exactly one of the two), to a story."""

    user_id: uuid.UUID | None = None
    email: Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_no_nul)] | None = None
    role: CollaboratorRole = Field(
        "contributor", description="'owner' may be granted only by the story's owner"
    )
    permissions: CollaboratorPermissions | None = None
    comment: Comment | None = Field(None, description="stored with the edit history entry")


class CollaboratorUpdate(Strict):
    """Change a collaborator's role or permissions (a field left out is unchanged)."""

    role: CollaboratorRole | None = None
    permissions: CollaboratorPermissions | None = None
    comment: Comment | None = Field(None, description="stored with the edit history entry")

    @field_validator("role")
    @classmethod
    def _role_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a collaborator needs a role (it cannot be null)")
        return value


class CollaboratorPublic(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str | None
    permissions: dict[str, Any] | None
    invited_by: uuid.UUID | None
    invited_at: datetime | None
    accepted_at: datetime | None
    status: str | None


class VersionPublic(BaseModel):
    version: str
    deprecated: bool
    sunset_date: str | None
    supported_features: list[str]
    valid: bool


class Health(BaseModel):
    status: str
    detail: str | None = None
    pending_migrations: list[str] = Field(default_factory=list)


class ImagePage(BaseModel):
    items: list[ImagePublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class LoraPage(BaseModel):
    items: list[LoraPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class PresetPage(BaseModel):
    items: list[PresetPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
