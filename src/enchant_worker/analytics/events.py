"""What an analytics event may say: the closed set of event types, the fields of each, and the bounds on
`event_data`. Torch-free and database-free: the API validates a batch with it before touching the database.

    parse_event(0, {"event_type": "story_view", "event_data": {"story_id": "..."}})

Every id an event names is a `Ref` field, so `intake.references.check_reference` (the one place the
project checks a caller's rights) decides whether the caller may name it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from enchant_worker.errors import EnchantError, InvalidJob
from enchant_worker.jobspecs.base import VIEW, Ref, Reference, references
from enchant_worker.jobspecs.limits import check_json_limits

MAX_BATCH_EVENTS = 500
MAX_EVENT_DATA_BYTES = 4096  # event_data as compact UTF-8 JSON
MAX_EVENT_DATA_DEPTH = 4  # event_data itself counts as 1
MAX_SESSION_ID_CHARS = 128
MAX_USER_AGENT_CHARS = 512  # longer User-Agent headers are cut, not refused
MAX_READING_SECONDS = 3600.0  # one reading_progress event reports at most an hour
# Event types outside the built-in set: `custom.` and a lower-case name; their event_data is free-form
# (bounded like the others), and the reference keys below, when present, are still checked.
CUSTOM_EVENT_TYPE = re.compile(r"^custom\.[a-z][a-z0-9_]{0,62}$")
SESSION_ID = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces


class InvalidEvent(EnchantError):
    """An event of the batch is invalid; `loc` names the field, from the request body down."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc


class EventData(BaseModel):
    """Base of each event type's data: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# A reader's events may name what they may read, or what is published in the community (VIEW); custom
# events may name only what they may read.
StoryId = Annotated[uuid.UUID, Ref("story", VIEW)]
ChapterId = Annotated[uuid.UUID | None, Ref("chapter", VIEW)]
SceneId = Annotated[uuid.UUID | None, Ref("scene", VIEW)]
ImageId = Annotated[uuid.UUID, Ref("image", VIEW)]
Label = Annotated[str, Field(min_length=1, max_length=64)]


class StoryView(EventData):
    """A reader opened a story (or one of its chapters or scenes). Rolled up as `views`, `unique_viewers`."""

    story_id: StoryId
    chapter_id: ChapterId = None
    scene_id: SceneId = None
    source: Label | None = None  # where the reader came from: "library", "community", "share link"...


class ReadingProgress(EventData):
    """Time spent reading since the last such event. Rolled up as `reading_seconds` and `readers`."""

    story_id: StoryId
    chapter_id: ChapterId = None
    scene_id: SceneId = None
    seconds: Annotated[float, Field(gt=0, le=MAX_READING_SECONDS)]
    progress_percent: Annotated[float | None, Field(ge=0, le=100)] = None  # how far into the story


class ImageView(EventData):
    """An image was shown full size."""

    image_id: ImageId


class ImageRating(EventData):
    """A reader rated an image 1-5 (their latest rating counts). Rolled up as `image_ratings` and
    `mean_image_rating`, and into images.user_rating (the mean of every reader's latest rating)."""

    image_id: ImageId
    rating: Annotated[int, Field(ge=1, le=5, strict=True)]


class ImageDownload(EventData):
    """An image file was downloaded."""

    image_id: ImageId
    format: Label | None = None


class StoryShare(EventData):
    """A story was shared."""

    story_id: StoryId
    channel: Label | None = None


class Search(EventData):
    """A search in the library or the community."""

    query: Annotated[str, Field(max_length=256)]
    results: Annotated[int | None, Field(ge=0)] = None


class CustomData(BaseModel):
    """The data of a `custom.*` event: any fields; those named like a reference are checked as one."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    story_id: Annotated[uuid.UUID | None, Ref("story")] = None
    chapter_id: Annotated[uuid.UUID | None, Ref("chapter")] = None
    scene_id: Annotated[uuid.UUID | None, Ref("scene")] = None
    image_id: Annotated[uuid.UUID | None, Ref("image")] = None


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "story_view": StoryView,
    "reading_progress": ReadingProgress,
    "image_view": ImageView,
    "image_rating": ImageRating,
    "image_download": ImageDownload,
    "story_share": StoryShare,
    "search": Search,
}
ENVELOPE_FIELDS = ("event_type", "event_data", "session_id")


@dataclass(frozen=True)
class Event:
    """One validated event, ready to store."""

    event_type: str
    event_data: dict[str, Any]  # as the caller sent it (validated; stored as given)
    session_id: str | None
    refs: tuple[Reference, ...]  # the ids it names, with their field paths in the request


def parse_batch(raw: Any) -> list[Event]:
    """The request body `{"events": [...]}`; raises InvalidEvent naming the first wrong field."""
    if not isinstance(raw, dict):
        raise InvalidEvent(("body",), 'the body must be a JSON object {"events": [...]}')
    for key in raw:
        if key != "events":
            raise InvalidEvent(("body", key), f'{key}: unknown field; the body has only "events"')
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise InvalidEvent(("body", "events"), "events: a list of 1 to 500 events is required")
    if len(events) > MAX_BATCH_EVENTS:
        raise InvalidEvent(
            ("body", "events"),
            f"events: {len(events)} events, above the limit of "
            f"{MAX_BATCH_EVENTS} per request; send them in several batches",
        )
    return [parse_event(i, event) for i, event in enumerate(events)]


def parse_event(index: int, raw: Any) -> Event:
    where = ("body", "events", index)
    name = f"events[{index}]"
    if not isinstance(raw, dict):
        raise InvalidEvent(where, f"{name}: an event is an object with event_type, event_data and session_id")
    for key in raw:
        if key not in ENVELOPE_FIELDS:
            raise InvalidEvent(
                (*where, key),
                f"{name}.{_shown(key)}: unknown field; an event has {', '.join(ENVELOPE_FIELDS)}",
            )
    event_type = raw.get("event_type")
    model = _model_of(event_type, where, name)
    session_id = _session_id(raw.get("session_id"), where, name)
    data = raw.get("event_data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidEvent((*where, "event_data"), f"{name}.event_data: must be a JSON object")
    _check_bounds(data, where, name)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error.get("loc", ()))
        path = ".".join(str(p) for p in loc)
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "extra_forbidden":
            message += f"; {event_type} events have {', '.join(model.model_fields)}"
        raise InvalidEvent((*where, "event_data", *loc), f"{name}.event_data.{path}: {message}") from None
    refs = tuple(references(parsed, f"{name}.event_data."))
    return Event(str(event_type), data, session_id, refs)  # a known type's name: _model_of checked it


def _model_of(event_type: Any, where: tuple, name: str) -> type[BaseModel]:
    if isinstance(event_type, str) and event_type in EVENT_TYPES:
        return EVENT_TYPES[event_type]
    if isinstance(event_type, str) and CUSTOM_EVENT_TYPE.match(event_type):
        return CustomData
    shown = json.dumps(event_type)[:80] if event_type is not None else "missing"
    raise InvalidEvent(
        (*where, "event_type"),
        f"{name}.event_type: {shown} is not an event type; use one of {', '.join(EVENT_TYPES)}, "
        "or custom.NAME (lower-case letters, digits, _) for your own",
    )


def _session_id(value: Any, where: tuple, name: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_SESSION_ID_CHARS
        or not SESSION_ID.match(value)
    ):
        raise InvalidEvent(
            (*where, "session_id"),
            f"{name}.session_id: must be 1 to {MAX_SESSION_ID_CHARS} "
            "printable ASCII characters without spaces",
        )
    return value


def _check_bounds(data: dict[str, Any], where: tuple, name: str) -> None:
    """Depth, storable text, then size: each event's data is small, so one client cannot fill the table."""
    try:
        check_json_limits(data, field=f"{name}.event_data", max_depth=MAX_EVENT_DATA_DEPTH)
    except InvalidJob as exc:
        raise InvalidEvent((*where, "event_data"), str(exc)) from None
    try:
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except ValueError:  # NaN or Infinity, which Python's JSON reader lets through and JSONB cannot hold
        raise InvalidEvent(
            (*where, "event_data"),
            f"{name}.event_data: numbers must be finite (NaN and Infinity are not JSON)",
        ) from None
    if size > MAX_EVENT_DATA_BYTES:
        raise InvalidEvent(
            (*where, "event_data"),
            f"{name}.event_data: {size} bytes as compact JSON, above the "
            f"limit of {MAX_EVENT_DATA_BYTES} bytes per event",
        )


def _shown(key: str) -> str:
    return key if re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$", key) else json.dumps(key[:40])
