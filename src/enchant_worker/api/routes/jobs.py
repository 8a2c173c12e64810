"""Jobs: create any job type (through `intake`: spec, rights, tier), read, list, cancel, retry, reprioritise."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from enchant_worker.api import pagination
from enchant_worker.api.auth import READ, WRITE, Principal, check_access, found
from enchant_worker.api.deps import PrincipalDep, QueueDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Conflict, Forbidden, NotFound, Unprocessable, responses
from enchant_worker.api.schemas import JobAction, JobCreate, JobPage, JobPublic, JobUpdate
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION, JOB_TYPE_FEATURES
from enchant_worker.domain.jobs import JobStatus
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.intake.training import LORA_ENTITY, TRAIN_LORA, initiate_lora_training

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _job(store: Store, principal: Principal, job_id: uuid.UUID, right: str) -> Row:
    row = found(store.job(job_id), f"job with id {job_id}")
    check_access(store, principal, row, right, "this job")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, responses=responses(409, 429))
def create_job(body: JobCreate, request: Request, state: StateDep, store: StoreDep, principal: PrincipalDep) -> Row:
    """Enqueue a job. Its metadata is validated by the type's spec (422 naming the field); every row and
    file it names is checked against the caller's rights (403 naming the field; 422 when missing); the
    caller's role and tier set which types, priorities and attempts are allowed, and its daily quotas
    (429 with Retry-After). With an idempotency key, the same request twice gives the same job (another
    job under a used key is a 409 naming it). A `train_lora` job without `lora_model_id` or entity
    creates its LoRA (the seed's `initiateLoRATraining`)."""
    version = request.scope["api_version"]
    feature = JOB_TYPE_FEATURES.get(body.job_type, BASIC_GENERATION)
    if not state.versions.supports(version, feature):
        raise NotFound(state.versions.feature_missing_message(version, feature, f"job type {body.job_type}"))
    actor = principal.actor
    if body.job_type == TRAIN_LORA:
        if body.entity_type not in (None, LORA_ENTITY):
            raise Unprocessable(("body", "entity_type"), f"entity_type: a train_lora job is about a {LORA_ENTITY}")
        _, job_id = initiate_lora_training(store.conn, actor, state.settings, body.metadata,
                                           entity_id=body.entity_id, idempotency_key=body.idempotency_key,
                                           priority=body.priority)
    else:
        job_id = submit(store.conn, actor, JobRequest(
            body.job_type, body.metadata, priority=body.priority, max_attempts=body.max_attempts,
            entity_type=body.entity_type, entity_id=body.entity_id, idempotency_key=body.idempotency_key),
            state.settings, state.plugin_validators())
    return found(store.job(job_id), f"job with id {job_id}")


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
