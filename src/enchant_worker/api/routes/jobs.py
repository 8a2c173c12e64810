"""Jobs: create any registered job type (validated by its handler), read, list, cancel, retry, reprioritise."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from enchant_worker.api import pagination
from enchant_worker.api.auth import READ, WRITE, Principal, check_access, found, story_rights
from enchant_worker.api.deps import PrincipalDep, QueueDep, StateDep, StoreDep
from enchant_worker.api.errors import (
    COMMON,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    invalid_job_error,
    responses,
)
from enchant_worker.api.schemas import JobAction, JobCreate, JobPage, JobPublic, JobUpdate
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION, JOB_TYPE_FEATURES
from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.errors import InvalidJob

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _job(store: Store, principal: Principal, job_id: uuid.UUID, right: str) -> Row:
    row = found(store.job(job_id), f"job with id {job_id}")
    check_access(store, principal, row, right, "this job")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, responses=responses(409))
def create_job(body: JobCreate, request: Request, state: StateDep, store: StoreDep, queue: QueueDep,
               principal: PrincipalDep) -> Row:
    """Enqueue a job of any registered type. Its metadata is validated by the type's handler (422 naming
    the field). With an idempotency key, the same request twice gives the same job."""
    version = request.scope["api_version"]
    feature = JOB_TYPE_FEATURES.get(body.job_type, BASIC_GENERATION)
    if not state.versions.supports(version, feature):
        raise NotFound(state.versions.feature_missing_message(version, feature, f"job type {body.job_type}"))
    handler = state.job_types.get(body.job_type)
    if handler is None:
        raise Unprocessable(("body", "job_type"), f"job_type: unknown job type {body.job_type!r}; "
                            f"known: {', '.join(state.job_types.job_types)}")
    if handler.validate is not None:
        try:
            handler.validate(body.metadata)
        except InvalidJob as exc:
            raise invalid_job_error(exc) from None
    if (body.entity_type is None) != (body.entity_id is None):
        raise Unprocessable(("body", "entity_id" if body.entity_id is None else "entity_type"),
                            "entity_type and entity_id go together: give both or neither")
    if body.entity_type is not None and not principal.is_admin:
        story = store.entity_story(body.entity_type, body.entity_id)
        if story is not None and WRITE not in story_rights(store, principal, story):
            raise Forbidden(f"this key may not add jobs to {body.entity_type} {body.entity_id}")
    job_id = queue.enqueue(NewJob(body.job_type, body.metadata, priority=body.priority,
                                  max_attempts=body.max_attempts, entity_type=body.entity_type,
                                  entity_id=body.entity_id, user_id=principal.user_id,
                                  idempotency_key=body.idempotency_key))
    row = found(store.job(job_id), f"job with id {job_id}")
    if row["user_id"] != principal.user_id and not principal.is_admin:  # the key belongs to someone else
        check_access(store, principal, row, READ, "this job")
    return row


@router.get("", response_model=JobPage, responses=responses(400))
def list_jobs(
    state: StateDep, store: StoreDep, principal: PrincipalDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    job_type: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="admin keys only: one user's jobs")] = None,
    entity_type: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    entity_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JobPage:
    """Jobs newest first, filtered; a user key sees its own jobs and those of stories it may read.
    Follow `next_cursor` for the next page (a changed cursor is a 400)."""
    if user_id is not None and not principal.is_admin and user_id != principal.user_id:
        raise Forbidden("user_id: only an admin key may list another user's jobs")
    filters = {"status": status_.value if status_ else None, "job_type": job_type, "user_id": user_id,
               "entity_type": entity_type, "entity_id": entity_id}
    secret = state.secret(store, "cursor")
    after = pagination.decode(secret, cursor, filters) if cursor else None
    rows = store.jobs(viewer=None if principal.is_admin else principal.user_id, limit=limit + 1, after=after,
                      **filters)
    page = rows[:limit]
    next_cursor = (pagination.encode(secret, page[-1]["created_at"], page[-1]["id"], filters)
                   if len(rows) > limit else None)
    return JobPage(items=[JobPublic.model_validate(r) for r in page], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Row:
    """One job with its progress, result or error."""
    return _job(store, principal, job_id, READ)


@router.post("/{job_id}/cancel", response_model=JobAction, responses=responses(409))
def cancel_job(job_id: uuid.UUID, store: StoreDep, queue: QueueDep, principal: PrincipalDep) -> JobAction:
    """Cancel a pending job at once, or ask a running one to stop at its next step."""
    _job(store, principal, job_id, WRITE)
    try:
        new_status = queue.cancel(job_id)
    except InvalidJob as exc:
        raise Conflict(str(exc)) from None
    if new_status == "cancelled":
        return JobAction(id=job_id, status=JobStatus.CANCELLED, message="cancelled")
    return JobAction(id=job_id, status=JobStatus.PROCESSING,
                     message="cancel requested; the running job stops at its next step")


@router.post("/{job_id}/retry", response_model=JobAction, responses=responses(409))
def retry_job(job_id: uuid.UUID, store: StoreDep, queue: QueueDep, principal: PrincipalDep) -> JobAction:
    """Run a failed or cancelled job again, with a fresh budget of attempts."""
    _job(store, principal, job_id, WRITE)
    try:
        queue.retry(job_id)
    except InvalidJob as exc:
        raise Conflict(str(exc)) from None
    return JobAction(id=job_id, status=JobStatus.PENDING, message="queued again")


@router.patch("/{job_id}", response_model=JobPublic, responses=responses(409))
def update_job(job_id: uuid.UUID, body: JobUpdate, store: StoreDep, queue: QueueDep,
               principal: PrincipalDep) -> Row:
    """Change the priority of a job that has not finished (0 is most urgent)."""
    _job(store, principal, job_id, WRITE)
    try:
        queue.set_priority(job_id, body.priority)
    except InvalidJob as exc:
        raise Conflict(str(exc)) from None
    return _job(store, principal, job_id, READ)
