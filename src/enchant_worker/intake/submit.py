"""How work enters the queue: the one path for the API and the CLI, and the worker's re-check.

`submit` validates the metadata with the job type's spec, checks that the caller may enqueue the type
and use everything it names (`references`), applies the caller's tier (priority floor, attempts, daily
quotas) and enqueues, all in one transaction. `Rechecks` runs the same checks for the job's user when
a worker is about to run it: the row may have been inserted by plain SQL, or a right lost since.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from enchant_worker.domain.jobs import Job, NewJob
from enchant_worker.errors import (
    AccessDenied,
    IdempotencyConflict,
    InvalidJob,
    JobTypeNotAllowed,
    QuotaExceeded,
)
from enchant_worker.intake.actor import ADMIN, SYSTEM, USER, Actor
from enchant_worker.intake.references import check_reference, check_references
from enchant_worker.intake.rights import WRITE
from enchant_worker.intake.tiers import Tier, load_tiers
from enchant_worker.jobspecs import JobSpec, JobType, Reference, job_types, parse, references
from enchant_worker.jobspecs.base import STORY_KINDS
from enchant_worker.queue import JobQueue
from enchant_worker.queue.jobqueue import same_request
from enchant_worker.sql import q

# entity_type → the reference kind it is checked as (write rights: a job adds to what it is about).
ENTITY_KINDS = {**{k: k for k in STORY_KINDS}, "image": "image", "lora_model": "lora_training"}
QUOTA_OF_USAGE = {"images": "images_per_day", "trainings": "trainings_per_day"}
ACTIVE_JOBS_RETRY_AFTER_S = 30  # a user at their cap of waiting jobs: about when one may have finished


@dataclass(frozen=True)
class JobRequest:
    """A job as a caller asks for it; unset priority and attempts take the job type's defaults."""

    job_type: str
    metadata: Any
    priority: int | None = None
    max_attempts: int | None = None
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    run_after: datetime | None = None


# Plugin job types: their handlers' `validate` (or None), by type. Plugins are admin-only.
PluginValidators = Mapping[str, Callable[[dict[str, Any]], Any] | None]
NO_PLUGINS: PluginValidators = MappingProxyType({})


def submit(
    conn, actor: Actor, request: JobRequest, settings: Any, plugins: PluginValidators = NO_PLUGINS
) -> uuid.UUID:
    """Enqueue `request` for `actor`; its id (an existing job's for a repeated idempotency key)."""
    job_type, spec = checked_spec(actor, request.job_type, request.metadata, plugins)
    entity = _entity(request, spec)
    if spec is not None:
        check_references(conn, actor, spec, settings)
    if entity is not None and not actor.is_admin and entity != _named_entity(spec):
        _check_entity(conn, actor, *entity, settings)  # (an entity the metadata names was checked above)
    with conn.transaction():
        existing = _replayed(conn, actor, request)
        if existing is not None:
            return existing
        tier = tier_of(conn, actor, settings)
        priority = (
            request.priority if request.priority is not None else (job_type.priority if job_type else 5)
        )
        attempts = (
            request.max_attempts
            if request.max_attempts is not None
            else (job_type.max_attempts if job_type else 3)
        )
        if tier is not None:
            priority = _capped_priority(tier, priority, explicit=request.priority is not None)
            _check_attempts(tier, attempts)
            _check_quotas(conn, actor, tier, spec)
        job_id = JobQueue(conn).enqueue(
            NewJob(
                request.job_type,
                request.metadata,
                priority=priority,
                max_attempts=attempts,
                entity_type=entity[0] if entity else None,
                entity_id=entity[1] if entity else None,
                user_id=actor.user_id,
                idempotency_key=request.idempotency_key,
                run_after=request.run_after,
            )
        )
        if tier is not None and spec is not None:
            for kind, amount in spec.usage().items():
                conn.execute(
                    q("intake_usage_add"), {"user_id": actor.user_id, "kind": kind, "amount": amount}
                )
    return job_id


def checked_spec(
    actor: Actor, job_type: str, metadata: Any, plugins: PluginValidators = NO_PLUGINS
) -> tuple[JobType | None, JobSpec | None]:
    """The job type and its validated spec; a plugin type (admins only) has no spec here."""
    known = job_types()
    jt = known.get(job_type)
    if jt is None and job_type in plugins:
        if not actor.is_admin:
            raise JobTypeNotAllowed(
                "job_type", f"{job_type} is a plugin job type; only admin keys may enqueue it"
            )
        if not isinstance(metadata, dict):
            raise InvalidJob("metadata: must be a JSON object")
        validate = plugins[job_type]
        if validate is not None:
            validate(metadata)
        return None, None
    if jt is None:
        names = sorted({*known, *plugins})
        raise InvalidJob(f"job_type: unknown job type {job_type!r}; known: {', '.join(names)}")
    if not jt.user_allowed and not actor.is_admin:
        allowed = ", ".join(sorted(t.name for t in known.values() if t.user_allowed))
        raise JobTypeNotAllowed(
            "job_type", f"a user key may not enqueue {job_type} jobs; users may enqueue {allowed}"
        )
    return jt, parse(jt.spec, metadata)


def tier_of(conn, actor: Actor, settings: Any) -> Tier | None:
    """The caps and quotas that apply to `actor` (None: an admin or the CLI, unlimited)."""
    if actor.is_admin or actor.user_id is None:
        return None
    row = conn.execute(q("intake_user"), {"id": actor.user_id}).fetchone()
    if row is None:
        raise AccessDenied("user_id", f"no user has id {actor.user_id}")
    return _tier(row, settings)


def _tier(row: Mapping[str, Any], settings: Any) -> Tier:
    return load_tiers(settings.tiers_path)[row["subscription_tier"]].with_overrides(row["quota_overrides"])


def actor_for_job(conn, job: Job) -> Actor:
    """Whom the worker checks a job as: its user, or the system for a job with no user (inserted by an
    admin, the CLI or the web app's own trusted code)."""
    return Actor(None, SYSTEM) if job.user_id is None else actor_for_user(conn, job.user_id)


def actor_for_user(conn, user_id: uuid.UUID) -> Actor:
    """A user as an actor: an admin when the user holds a live admin key, else an ordinary user."""
    return _actor(_user_row(conn, user_id))


def _user_row(conn, user_id: uuid.UUID) -> Mapping[str, Any]:
    row = conn.execute(q("intake_user"), {"id": user_id}).fetchone()
    if row is None:
        raise AccessDenied("user_id", f"no user has id {user_id}")
    return row


def _actor(row: Mapping[str, Any]) -> Actor:
    return Actor(row["id"], ADMIN if row["is_admin"] else USER)


@dataclass(frozen=True)
class Recheck:
    max_run_s: float | None  # the tier's limit on the run time (None: the handler's own)


class Rechecks:
    """The enqueue checks again, for each job's user, before a worker runs the jobs of one lease (the row
    may come from plain SQL, or a right may have been lost since). Each user's row (admin or not, tier) is
    read once for the lease instead of once or twice per job; the references of every job are checked
    every time. The jobs of a lease are taken together and start moments apart (a worker leases several
    at once only while its jobs take milliseconds), so a right lost after a lease is seen by the next."""

    def __init__(self, connect: Callable[[], Any], settings: Any):
        self.connect = connect
        self.settings = settings
        self._users: dict[uuid.UUID, Mapping[str, Any]] = {}

    def check(self, job: Job) -> Recheck:
        """Raises `InvalidJob` (`AccessDenied`) naming the field. Opens no connection for an ownerless job
        that names nothing."""
        jt = job_types().get(job.job_type)
        spec = parse(jt.spec, job.metadata) if jt is not None else None
        if job.user_id is None and (spec is None or next(references(spec), None) is None):
            return Recheck(None)
        with self.connect() as conn:
            row = None if job.user_id is None else self._user(conn, job.user_id)
            actor = Actor(None, SYSTEM) if row is None else _actor(row)
            if not actor.is_admin and (jt is None or not jt.user_allowed):
                raise JobTypeNotAllowed("job_type", f"the job's user may not run {job.job_type} jobs")
            if spec is not None:
                check_references(conn, actor, spec, self.settings)
            entity_type, entity_id = job.entity_type, job.entity_id
            if (
                entity_type is not None
                and entity_id is not None
                and not actor.is_admin
                and (entity_type, entity_id) != _named_entity(spec)
            ):
                _check_entity(conn, actor, entity_type, entity_id, self.settings)
        tier = None if row is None or actor.is_admin else _tier(row, self.settings)
        return Recheck(float(tier.max_run_s) if tier is not None and tier.max_run_s else None)

    def _user(self, conn, user_id: uuid.UUID) -> Mapping[str, Any]:
        if user_id not in self._users:
            self._users[user_id] = _user_row(conn, user_id)
        return self._users[user_id]


# -- helpers --------------------------------------------------------------------------------------


def _named_entity(spec: JobSpec | None) -> tuple[str, uuid.UUID] | None:
    return spec.entity() if spec is not None else None


def _entity(request: JobRequest, spec: JobSpec | None) -> tuple[str, uuid.UUID] | None:
    if (request.entity_type is None) != (request.entity_id is None):
        field = "entity_id" if request.entity_id is None else "entity_type"
        raise InvalidJob(f"{field}: entity_type and entity_id go together: give both or neither")
    named = _named_entity(spec)
    if request.entity_type is None:
        return named
    given = (request.entity_type, request.entity_id)
    if named is not None and named != given:
        raise InvalidJob(
            f"entity_id: the job is about {named[0]} {named[1]} (its metadata says so), "
            f"not {given[0]} {given[1]}"
        )
    return given  # type: ignore[return-value]


def _check_entity(conn, actor: Actor, entity_type: str, entity_id: uuid.UUID, settings: Any) -> None:
    kind = ENTITY_KINDS.get(entity_type)
    if kind is None:
        raise InvalidJob(
            f"entity_type: must be one of {', '.join(sorted(ENTITY_KINDS))}, not {entity_type!r}"
        )
    check_reference(conn, actor, Reference("entity_id", kind, WRITE, entity_id), settings)


def _replayed(conn, actor: Actor, request: JobRequest) -> uuid.UUID | None:
    """The job this user already enqueued with this idempotency key (the same request sent again)."""
    if request.idempotency_key is None:
        return None
    row = conn.execute(
        q("intake_idempotent_job"), {"user_id": actor.user_id, "key": request.idempotency_key}
    ).fetchone()
    if row is None:
        return None
    if not same_request(row, request.job_type, request.metadata):
        raise IdempotencyConflict(request.idempotency_key, row["id"])
    return row["id"]


def _capped_priority(tier: Tier, priority: int, *, explicit: bool) -> int:
    if priority >= tier.priority_floor:
        return priority
    if not explicit:  # the type's default is more urgent than the tier allows: the tier's best
        return tier.priority_floor
    raise InvalidJob(
        f"priority: the {tier.name} tier may ask for {tier.priority_floor} (its most urgent) "
        f"or a higher number, not {priority}"
    )


def _check_attempts(tier: Tier, attempts: int) -> None:
    if attempts > tier.max_attempts:
        raise InvalidJob(
            f"max_attempts: the {tier.name} tier allows at most {tier.max_attempts}, not {attempts}"
        )


def _check_quotas(conn, actor: Actor, tier: Tier, spec: JobSpec | None) -> None:
    conn.execute(q("intake_lock_user"), {"user_id": actor.user_id})
    if tier.max_active_jobs:
        active = conn.execute(q("intake_active_jobs"), {"user_id": actor.user_id}).fetchone()["n"]
        if active >= tier.max_active_jobs:
            raise QuotaExceeded(
                f"quota: {active} jobs are waiting or running, the most the {tier.name} tier "
                "allows at once; try again when some have finished",
                ACTIVE_JOBS_RETRY_AFTER_S,
            )
    wanted = spec.usage() if spec is not None else {}
    if not wanted:
        return
    if tier.images_per_job and wanted.get("images", 0) > tier.images_per_job:
        raise InvalidJob(
            f"count: the {tier.name} tier allows at most {tier.images_per_job} images per job, not "
            f"{wanted['images']} (send several jobs)"
        )
    used = {r["kind"]: r["amount"] for r in conn.execute(q("intake_usage"), {"user_id": actor.user_id})}
    for kind, amount in wanted.items():
        limit = getattr(tier, QUOTA_OF_USAGE[kind], 0)
        if limit and used.get(kind, 0) + amount > limit:
            retry = conn.execute(q("intake_seconds_to_midnight")).fetchone()["s"]
            raise QuotaExceeded(
                f"quota: {used.get(kind, 0)} of the {tier.name} tier's {limit} {kind} per day "
                f"are used, and this job asks for {amount} more; the quota renews at "
                "midnight UTC",
                max(1, retry),
            )
