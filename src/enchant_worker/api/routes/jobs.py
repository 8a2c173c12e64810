"""Jobs: create any job type (through `intake`: spec, rights, tier), read, list, cancel, retry, reprioritise."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from enchant_worker.api import pagination
from enchant_worker.api.auth import READ, WRITE, Principal, check_access, found
from enchant_worker.api.deps import AdminDep, PrincipalDep, QueueDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Conflict, Forbidden, NotFound, Unprocessable, responses
from enchant_worker.api.schemas import (
    JobBulk,
    JobBulkResult,
    JobCreate,
    JobPage,
    JobPublic,
    JobSkipped,
    JobUpdate,
)
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION, JOB_TYPE_FEATURES
from enchant_worker.domain.jobs import JobStatus
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.intake.training import LORA_ENTITY, TRAIN_LORA, initiate_lora_training
from enchant_worker.queue import JobQueue

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _job(store: Store, principal: Principal, job_id: uuid.UUID, right: str) -> Row:
    row = found(store.job(job_id), f"job with id {job_id}")
    check_access(store, principal, row, right, "this job")
    return row


def _status(store: Store, job_id: uuid.UUID) -> str | None:
    row = store.job(job_id)
    return row["status"] if row else None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, responses=responses(409, 429))
def create_job(
    body: JobCreate, request: Request, state: StateDep, store: StoreDep, principal: PrincipalDep
) -> Row:
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
            raise Unprocessable(
                ("body", "entity_type"), f"entity_type: a train_lora job is about a {LORA_ENTITY}"
            )
        _, job_id = initiate_lora_training(
            store.conn,
            actor,
            state.settings,
            body.metadata,
            entity_id=body.entity_id,
            idempotency_key=body.idempotency_key,
            priority=body.priority,
        )
    else:
        job_id = submit(
            store.conn,
            actor,
            JobRequest(
                body.job_type,
                body.metadata,
                priority=body.priority,
                max_attempts=body.max_attempts,
                entity_type=body.entity_type,
                entity_id=body.entity_id,
                idempotency_key=body.idempotency_key,
            ),
            state.settings,
            state.plugin_validators(),
        )
    return found(store.job(job_id), f"job with id {job_id}")


@router.get("", response_model=JobPage, responses=responses(400))
def list_jobs(
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    job_type: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="admin keys only: one user's jobs")] = None,
    entity_type: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    entity_id: uuid.UUID | None = None,
    story_id: Annotated[
        uuid.UUID | None, Query(description="jobs about the story, its chapters, scenes...")
    ] = None,
    created_from: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    created_to: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JobPage:
    """Jobs newest first, filtered; a user key sees its own jobs and those of stories it may read.
    Follow `next_cursor` for the next page (a changed cursor is a 400)."""
    if user_id is not None and not principal.is_admin and user_id != principal.user_id:
        raise Forbidden("user_id: only an admin key may list another user's jobs")
    filters: dict[str, Any] = {
        "status": status_.value if status_ else None,
        "job_type": job_type,
        "user_id": user_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "story_id": story_id,
        "created_from": created_from,
        "created_to": created_to,
    }
    secret = state.secret(store, "cursor")
    rows = store.jobs(
        viewer=None if principal.is_admin else principal.user_id,
        limit=limit + 1,
        after=pagination.position(secret, cursor, filters),
        **filters,
    )
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return JobPage(items=[JobPublic.model_validate(r) for r in items], next_cursor=next_cursor)


@router.post("/bulk", response_model=JobBulkResult, responses=responses(403))
def bulk_action(body: JobBulk, store: StoreDep, queue: QueueDep, admin: AdminDep) -> JobBulkResult:
    """Cancel or retry every job that matches the filters (at most `limit`, newest first); admin keys
    only. Jobs in a state the action does not apply to are skipped and listed with their state. Each
    change is recorded with the key that made it."""
    filters = body.model_dump(exclude={"action", "limit"})
    filters["status"] = body.status.value if body.status else None
    return bulk(store, queue, admin, body.action, filters, body.limit)


BULK_FROM = {"cancel": ("pending", "processing"), "retry": ("failed", "cancelled")}


def bulk(
    store: Store, queue: JobQueue, principal: Principal, action: str, filters: dict[str, Any], limit: int
) -> JobBulkResult:
    """One action on each job matching `filters` (a job that changed state meanwhile is skipped)."""
    rows = store.job_ids_matching(limit=limit, **filters)
    changed, skipped = [], []
    for row in rows:
        job = store.job(row["id"]) if row["status"] in BULK_FROM[action] else None
        if job is None:
            skipped.append(JobSkipped(id=row["id"], status=row["status"]))
            continue
        try:
            act(store, queue, principal, job, action, bulk=True)
            changed.append(row["id"])
        except Conflict as exc:
            skipped.append(JobSkipped(id=row["id"], status=exc.status or "unknown"))
    return JobBulkResult(action=action, matched=len(rows), changed=changed, skipped=skipped)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Row:
    """One job with its progress, result or error."""
    return _job(store, principal, job_id, READ)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=responses(409))
def cancel_job(job_id: uuid.UUID, store: StoreDep, queue: QueueDep, principal: PrincipalDep) -> Row:
    """Cancel a pending job at once (the job comes back `cancelled`), or ask a running one to stop at its
    next step (it comes back `processing` with `cancel_requested`). A finished job is a 409 whose
    `status` names its state."""
    before = _job(store, principal, job_id, WRITE)
    return act(store, queue, principal, before, "cancel")


@router.post("/{job_id}/retry", response_model=JobPublic, responses=responses(409))
def retry_job(job_id: uuid.UUID, store: StoreDep, queue: QueueDep, principal: PrincipalDep) -> Row:
    """Run a failed or cancelled job again, with a fresh budget of attempts; the job comes back
    `pending`. Any other state is a 409 whose `status` names it."""
    before = _job(store, principal, job_id, WRITE)
    return act(store, queue, principal, before, "retry")


@router.patch("/{job_id}", response_model=JobPublic, responses=responses(409))
def update_job(
    job_id: uuid.UUID, body: JobUpdate, store: StoreDep, queue: QueueDep, principal: PrincipalDep
) -> Row:
    """Change the priority of a job that has not finished (0 is most urgent)."""
    before = _job(store, principal, job_id, WRITE)
    return act(store, queue, principal, before, "priority", priority=body.priority)


def act(
    store: Store,
    queue: JobQueue,
    principal: Principal,
    before: Row,
    action: str,
    *,
    priority: int | None = None,
    bulk: bool = False,
) -> Row:
    """Cancel, retry or re-prioritise one job through the queue, record who did it, and return the job
    as it is now. A job in the wrong state is a 409 whose body's `status` names the state."""
    job_id = before["id"]
    try:
        if action == "cancel":
            queue.cancel(job_id)
        elif action == "retry":
            queue.retry(job_id)
        else:
            assert priority is not None  # the priority action always carries one
            queue.set_priority(job_id, priority)
    except InvalidJob as exc:
        raise Conflict(str(exc), status=_status(store, job_id)) from None
    after = found(store.job(job_id), f"job with id {job_id}")
    detail: dict[str, Any] = {"priority": [before["priority"], priority]} if action == "priority" else {}
    if action == "cancel" and after["status"] == "processing":
        detail["note"] = "cancel requested; the running job stops at its next step"
    store.record_job_action(
        job_id=job_id,
        action=action,
        key_id=principal.key_id,
        key_name=principal.name,
        user_id=principal.user_id,
        from_status=before["status"],
        to_status=after["status"],
        detail=detail,
        bulk=bulk,
    )
    return after
