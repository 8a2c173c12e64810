"""Request and response bodies of the analytics routes (`api.routes.events`). The event types and the
fields of each are documented and checked in `analytics.events`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from enchant_worker.analytics.events import (
    EVENT_TYPES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_DATA_BYTES,
    MAX_SESSION_ID_CHARS,
)

_TYPES = ", ".join(EVENT_TYPES)


class EventIn(BaseModel):
    """One event. `event_data` holds the fields of its type (unknown fields are refused); every id it
    names must be one the caller may read."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(
        max_length=80, description=f"one of {_TYPES}, or custom.NAME for your own", examples=["story_view"]
    )
    event_data: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            f"at most {MAX_EVENT_DATA_BYTES} bytes as compact JSON, 4 levels deep; story_view: story_id "
            "(chapter_id, scene_id, source); reading_progress: story_id, seconds (0-3600; chapter_id, scene_id, "
            "progress_percent); image_view: image_id; image_rating: image_id, rating (1-5); image_download: "
            "image_id (format); story_share: story_id (channel); search: query (results)"
        ),
        examples=[{"story_id": "0b9d6f3e-7c1a-4f7e-9a53-2f1d8f0c1a22"}],
    )
    session_id: str | None = Field(
        None,
        max_length=MAX_SESSION_ID_CHARS,
        description="the client's session, printable ASCII without spaces",
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events stored (all of the batch, or none and an error)")


class EventCount(BaseModel):
    day: date
    event_type: str
    events: int
    users: int = Field(description="distinct users")
    sessions: int = Field(description="distinct session ids")


class EventAggregates(BaseModel):
    items: list[EventCount]
    oldest_event_at: datetime | None = Field(
        description="raw events before this have expired (see the "
        "expire_events task); story_metrics keep their roll-ups"
    )
