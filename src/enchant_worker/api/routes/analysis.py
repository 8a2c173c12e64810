"""Story analysis (feature `scene_extraction`): queue an `analyze_story` job, read what it stored (the
story's insights and pacing, a scene's quality score with its evidence, suggestions and enhancement
rules), and read the story's metrics of any kind (analysis figures, analytics rollups) by type and time.
Reading needs read rights on the story (its owner, its collaborators, admins); analysing needs write."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from enchant_worker import story_analysis_store as analysis_store
from enchant_worker.api.auth import READ, WRITE
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StoreDep
from enchant_worker.api.errors import COMMON, NotFound, Unprocessable, invalid_job_error
from enchant_worker.api.routes.books import require
from enchant_worker.api.store import Store
from enchant_worker.api.versions import SCENE_EXTRACTION
from enchant_worker.db.connection import one
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.analyze_story import AnalyzeStorySpec
from enchant_worker.sql import q

router = APIRouter(tags=["story analysis"], responses=COMMON)
FEATURE = SCENE_EXTRACTION
JOB_TYPE = "analyze_story"
METRICS_MAX = 1000


class AnalyzeRequest(BaseModel):
    analyzer: Literal["builtin", "llm"] = "builtin"
    text_model: str | None = Field(default=None, min_length=1, max_length=200)
    force: bool = Field(
        False, description="recompute even when the text did not change since the last analysis"
    )

    model_config = {"extra": "forbid"}


class AnalyzeAccepted(BaseModel):
    job_id: uuid.UUID
    story_id: uuid.UUID
    status: str
    message: str


class StoryInsightsPublic(BaseModel):
    story_id: uuid.UUID
    analyzer: str
    text_model: str | None = None
    content_hash: str
    computed_at: datetime
    stale: bool = Field(description="the story changed since: its figures are of the text as it was")
    insights: dict[str, Any]
    pacing: dict[str, Any]
    scenes: list[dict[str, Any]]
    notes: list[str]


class SceneQualityPublic(BaseModel):
    scene_id: uuid.UUID
    overall: float
    narrative_coherence: float
    visual_potential: float
    character_development: float
    pacing: float
    emotional_impact: float
    evidence: dict[str, Any]
    source: str
    confidence: float | None
    certain: bool
    tentative: bool
    notes: list[str]
    computed_at: datetime
    stale: bool = Field(description="the scene's text changed since it was scored")


class SuggestionsPublic(BaseModel):
    story_id: uuid.UUID
    computed_at: datetime
    stale: bool
    scenes: list[dict[str, Any]]
    characters: list[dict[str, Any]]
    plot: list[dict[str, Any]]
    enhancement: dict[str, Any]


class MetricPublic(BaseModel):
    id: uuid.UUID
    metric_type: str
    metric_value: float | None
    metadata: dict[str, Any] | None
    recorded_at: datetime


def _stored_story(store: Store, story_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
    """The story's stored analysis and whether the story changed since (404 when never analysed)."""
    document = analysis_store.stored(store.conn, "story", story_id, analysis_store.STORY_KEY)
    if document is None:
        raise NotFound(
            f"story {story_id} has not been analysed yet: POST /stories/{story_id}/analyze queues it"
        )
    return document, analysis_store.is_stale(store.conn, story_id, document)


@router.post(
    "/stories/{story_id}/analyze", response_model=AnalyzeAccepted, status_code=status.HTTP_202_ACCEPTED
)
def analyze(
    story_id: uuid.UUID, body: AnalyzeRequest, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> AnalyzeAccepted:
    """Queue an analyze_story job (write rights): each scene's quality score with its evidence, the
    story's insights and pacing, suggestions, and the enhancement rules. `builtin` measures; `llm` asks a
    text model for scores with a reason each (never presented as certain) and proposes edits. Unchanged
    text since the last analysis reuses it (unless `force`)."""
    require(store, principal, "story", story_id, WRITE)
    metadata = {"story_id": str(story_id), **body.model_dump(exclude_none=True)}
    try:
        parse(AnalyzeStorySpec, metadata)
    except InvalidJob as exc:
        raise invalid_job_error(exc, ("body",)) from None
    job_id = submit(store.conn, principal.actor, JobRequest(JOB_TYPE, metadata), settings)
    return AnalyzeAccepted(
        job_id=job_id,
        story_id=story_id,
        status="pending",
        message=f"queued; GET /jobs/{job_id} shows it, GET /stories/{story_id}/insights the result",
    )


@router.get("/stories/{story_id}/insights", response_model=StoryInsightsPublic)
def insights(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> StoryInsightsPublic:
    """The story's latest analysis: its scores (overall, narrative_coherence, visual_potential,
    character_development, pacing, emotional_impact), counts, characters and their development, emotions,
    strongest and weakest scenes, the pacing analysis (chapter and scene lengths, tension curve,
    pacing_inconsistencies), and `stale` when the text changed since."""
    require(store, principal, "story", story_id, READ)
    document, stale = _stored_story(store, story_id)
    return StoryInsightsPublic(
        story_id=story_id,
        analyzer=document["analyzer"],
        text_model=document.get("text_model"),
        content_hash=document["content_hash"],
        computed_at=document["computed_at"],
        stale=stale,
        insights=document["insights"],
        pacing=document["pacing"],
        scenes=document["scenes"],
        notes=document["notes"],
    )


@router.get("/stories/{story_id}/suggestions", response_model=SuggestionsPublic)
def suggestions(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> SuggestionsPublic:
    """The ContentSuggestionEngine's suggestions (per scene: missing_transition, emotional_beat,
    character_moment, world_building; per character; for the plot), each with confidence and reasoning,
    and enhanceStoryContent's result: overall_score, the seed's rules that fired, auto_fixes."""
    require(store, principal, "story", story_id, READ)
    document, stale = _stored_story(store, story_id)
    found = document["suggestions"]
    return SuggestionsPublic(
        story_id=story_id,
        computed_at=document["computed_at"],
        stale=stale,
        scenes=found["scenes"],
        characters=found["characters"],
        plot=found["plot"],
        enhancement=document["enhancement"],
    )


@router.get("/scenes/{scene_id}/quality", response_model=SceneQualityPublic)
def scene_quality(scene_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> SceneQualityPublic:
    """The scene's QualityScore from the story's latest analysis, with the evidence of each score (and,
    from the llm, its reason and confidence: `certain` is false for every llm score)."""
    story_id = require(store, principal, "scene", scene_id, READ)
    value = analysis_store.stored(store.conn, "scene", scene_id, analysis_store.SCENE_KEY)
    if value is None:
        raise NotFound(
            f"scene {scene_id} has no quality score yet: POST /stories/{story_id}/analyze queues the "
            "story's analysis"
        )
    row = one(
        store.conn.execute("SELECT coalesce(content, '') AS content FROM scenes WHERE id = %s", (scene_id,))
    )
    return SceneQualityPublic(
        scene_id=scene_id,
        **{k: v for k, v in value.items() if k in SceneQualityPublic.model_fields},
        stale=analysis_store.text_sha256(row["content"]) != value.get("text_sha256"),
    )


@router.get("/stories/{story_id}/metrics", response_model=list[MetricPublic])
def metrics(
    story_id: uuid.UUID,
    store: StoreDep,
    principal: PrincipalDep,
    metric_type: Annotated[
        str | None, Query(max_length=100, description="one type, e.g. quality_overall")
    ] = None,
    since: Annotated[datetime | None, Query(alias="from", description="recorded at or after")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="recorded before")] = None,
    limit: Annotated[int, Query(ge=1, le=METRICS_MAX)] = 200,
) -> list[dict[str, Any]]:
    """The story's metrics, newest first: analysis figures (`quality_*`, `character_development_score`,
    `pacing_inconsistencies`, `words`, `scenes`; metadata names the content hash) and any other kind
    recorded for the story (e.g. analytics rollups), filtered by `metric_type` and `from`/`to`."""
    require(store, principal, "story", story_id, READ)
    if since is not None and until is not None and since >= until:
        raise Unprocessable(
            ("query", "to"), f"to ({until.isoformat()}) must be after from ({since.isoformat()})"
        )
    return store.conn.execute(
        q("analysis_metrics"),
        {"story_id": story_id, "metric_type": metric_type, "since": since, "until": until, "limit": limit},
    ).fetchall()
