"""Exports: start one for a story (an `export_story` job), watch it, download the file, get a signed link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from enchant_worker.api import pagination
from enchant_worker.api.auth import READ, Principal, check_access, found, story_rights
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Conflict, Forbidden, NotFound, responses
from enchant_worker.api.files import stored_file
from enchant_worker.api.serving import file_response, signed_url
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION
from enchant_worker.domain.jobs import JobStatus
from enchant_worker.intake import JobRequest, submit
from enchant_worker.jobspecs.export_story import ExportOptionsSpec, ExportStorySpec

router = APIRouter(tags=["exports"], responses=COMMON)
FEATURE = BASIC_GENERATION
JOB_TYPE = "export_story"


class ExportPublic(BaseModel):
    id: uuid.UUID  # the export_story job
    story_id: uuid.UUID | None
    status: JobStatus
    format: str
    options: dict[str, Any]
    progress_percent: int
    progress: dict[str, Any] | None
    error_message: str | None
    filename: str | None = None
    media_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    notes: list[str] = []
    file_url: str | None = None  # with an API key
    created_at: datetime
    completed_at: datetime | None


class SignedLink(BaseModel):
    url: str
    expires_at: datetime


def export_public(row: Row, version: str) -> ExportPublic:
    result = row["result"] or {}
    done = row["status"] == "completed" and "file" in result
    return ExportPublic(
        id=row["id"],
        story_id=row["story_id"],
        status=row["status"],
        format=row["metadata"].get("format", ""),
        options={k: v for k, v in row["metadata"].items() if k != "story_id"},
        progress_percent=row["progress_percent"],
        progress=row["progress"],
        error_message=row["error_message"],
        filename=result.get("filename"),
        media_type=result.get("media_type"),
        bytes=result.get("bytes"),
        sha256=result.get("sha256"),
        notes=result.get("notes", []),
        file_url=f"/{version}/exports/{row['id']}/file" if done else None,
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


def _export(store: Store, principal: Principal, export_id: uuid.UUID) -> Row:
    row = store.job(export_id)
    if row is None or row["job_type"] != JOB_TYPE:
        raise NotFound(f"no export with id {export_id}")
    check_access(store, principal, row, READ, "this export")
    return row


def _readable_story(store: Store, principal: Principal, story_id: uuid.UUID) -> None:
    if store.story_access(story_id, principal.user_id) is None:
        raise NotFound(f"no story with id {story_id}")
    if READ not in story_rights(store, principal, story_id):
        raise Forbidden("this key may not export this story (it belongs to another user)")


@router.post("/stories/{story_id}/exports", status_code=status.HTTP_202_ACCEPTED, response_model=ExportPublic)
def create_export(
    story_id: uuid.UUID,
    body: ExportOptionsSpec,
    request: Request,
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
) -> ExportPublic:
    """Export the story as pdf, epub, html, json or video (the seed's ExportOptions). Runs as an
    `export_story` job: poll `GET /exports/{id}`, then download `file_url`. Owner and collaborators."""
    _readable_story(store, principal, story_id)
    spec = ExportStorySpec(story_id=story_id, **body.model_dump())
    job_id = submit(
        store.conn, principal.actor, JobRequest(JOB_TYPE, spec.model_dump(mode="json")), state.settings
    )
    return export_public(found(store.job(job_id), f"job {job_id}"), request.scope["api_version"])


class ExportPage(BaseModel):
    items: list[ExportPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


@router.get("/stories/{story_id}/exports", response_model=ExportPage, responses=responses(400))
def list_exports(
    story_id: uuid.UUID,
    request: Request,
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ExportPage:
    """The story's exports, newest first; follow `next_cursor` for the next page."""
    _readable_story(store, principal, story_id)
    filters: dict[str, Any] = {"job_type": JOB_TYPE, "entity_type": "story", "entity_id": story_id}
    secret = state.secret(store, "cursor")
    rows = store.jobs(
        viewer=None, limit=limit + 1, after=pagination.position(secret, cursor, filters), **filters
    )
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return ExportPage(
        items=[export_public(r, request.scope["api_version"]) for r in items], next_cursor=next_cursor
    )


@router.get("/exports/{export_id}", response_model=ExportPublic)
def get_export(
    export_id: uuid.UUID, request: Request, store: StoreDep, principal: PrincipalDep
) -> ExportPublic:
    """An export's status, progress, and when done its file's name, size and notes."""
    return export_public(_export(store, principal, export_id), request.scope["api_version"])


def _finished_file(row: Row) -> dict[str, Any]:
    if row["status"] != "completed" or not (row["result"] or {}).get("file"):
        raise Conflict(
            f"the export is {row['status']}, not completed"
            + (f": {row['error_message']}" if row["error_message"] else "; try again when it is done")
        )
    result: dict[str, Any] = row["result"]
    return result


@router.get(
    "/exports/{export_id}/file",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the exported file"},
        206: {"description": "part of the file (Range)"},
        304: {"description": "not modified"},
        **responses(409),
    },
)
def get_export_file(
    export_id: uuid.UUID, request: Request, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    """The exported file, as an attachment named after the story. Strong ETag, 304, Range (video)."""
    result = _finished_file(_export(store, principal, export_id))
    file = stored_file(settings, result["file"], f"export {export_id}")
    return file_response(
        request,
        file,
        relative=result["file"],
        media_type=result["media_type"],
        public=False,
        filename=result["filename"],
    )


@router.get("/exports/{export_id}/link", response_model=SignedLink, responses=responses(409))
def get_export_link(
    export_id: uuid.UUID,
    store: StoreDep,
    state: StateDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    expires_in: Annotated[int, Query(ge=60, description="seconds (capped by the server)")] = 3600,
) -> SignedLink:
    """A signed URL of the file that works without a key until it expires."""
    result = _finished_file(_export(store, principal, export_id))
    url, expires = signed_url(
        settings, state.secret(store, "files"), result["file"], expires_in, result["filename"]
    )
    return SignedLink(url=url, expires_at=datetime.fromtimestamp(expires, UTC))
