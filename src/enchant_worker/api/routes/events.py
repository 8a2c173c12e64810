"""Analytics events: clients post batches of reader events; admins read aggregate counts.

The scheduler rolls the events up into story_metrics (`analytics.rollup`) and deletes the raw events after
their retention period (configs/schedule.toml, [tasks.expire_events] retention_days).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from enchant_worker.analytics.events import InvalidEvent, parse_event
from enchant_worker.analytics.recorder import Client, record_events
from enchant_worker.api.client_address import client_address
from enchant_worker.api.deps import AdminDep, PrincipalDep, SessionDep, SettingsDep
from enchant_worker.api.errors import COMMON, Unprocessable, invalid_job_error, responses
from enchant_worker.api.event_schemas import EventAggregates, EventBatch, EventCount, EventsAccepted
from enchant_worker.api.versions import BASIC_GENERATION
from enchant_worker.db.connection import one
from enchant_worker.errors import AccessDenied, InvalidJob
from enchant_worker.sql import q

router = APIRouter(tags=["analytics"], responses=COMMON)
FEATURE = BASIC_GENERATION
MAX_AGGREGATE_ROWS = 10_000


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    responses=responses(413, 429),
)
def post_events(
    body: EventBatch, request: Request, conn: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> EventsAccepted:
    """Record up to 500 analytics events, all or none. The client's address and User-Agent come from the
    request (a proxy's X-Forwarded-For counts only from ENCHANT_TRUSTED_PROXIES). An id in `event_data`
    the key may not read is a 403 naming the field; past the tier's `events_per_minute` the whole batch
    is refused with 429 and Retry-After."""
    try:
        events = [parse_event(i, e.model_dump(exclude_unset=True)) for i, e in enumerate(body.events)]
    except InvalidEvent as exc:
        raise Unprocessable(exc.loc, str(exc), "invalid_event") from None
    peer = request.client.host if request.client else None
    client = Client(
        client_address(peer, request.headers, settings.trusted_proxies, settings.client_ip_header),
        request.headers.get("user-agent"),
    )
    try:
        stored = record_events(conn, principal.actor, events, client, settings)
    except AccessDenied:
        raise
    except InvalidJob as exc:  # an id that names no row: 422 located in the body
        raise invalid_job_error(exc, prefix=("body",)) from None
    return EventsAccepted(accepted=stored)


@router.get("/analytics/events", response_model=EventAggregates, responses=responses(400))
def event_aggregates(
    conn: SessionDep,
    principal: AdminDep,
    event_type: Annotated[str | None, Query(max_length=80, description="only this type")] = None,
    from_: Annotated[
        datetime | None, Query(alias="from", description="received at or after (ISO 8601)")
    ] = None,
    to: Annotated[datetime | None, Query(description="received before (ISO 8601)")] = None,
) -> EventAggregates:
    """Admins: raw events per UTC day and type (events, distinct users, distinct sessions). Raw events
    are kept for the retention period only; per-story roll-ups stay in story_metrics."""
    from_ts, to_ts = _aware(from_), _aware(to)
    if from_ts and to_ts and from_ts > to_ts:
        raise Unprocessable(("query", "from"), "from: must not be after `to`")
    rows = conn.execute(
        q("event_aggregates"),
        {"event_type": event_type, "from_ts": from_ts, "to_ts": to_ts, "limit": MAX_AGGREGATE_ROWS},
    ).fetchall()
    oldest = one(conn.execute(q("oldest_event")))["at"]
    return EventAggregates(items=[EventCount(**r) for r in rows], oldest_event_at=oldest)


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
