"""A story and everything in it, read from the database as plain JSON values: the content of the JSON
export (`json_writer`) and the source of the document model (`document.build_book`).

Text is held in memory (a 2,000-chapter novel is a few megabytes); image files are not: rows name them
and each writer reads one at a time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from enchant_worker.db.connection import Connection
from enchant_worker.sql import q

FORMAT_NAME = "enchant-story"
FORMAT_VERSION = 1


class StoryNotFound(LookupError):
    pass


def plain(value: Any) -> Any:
    """A database value as JSON: UUIDs and times as strings (UTC), decimals as numbers."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _rows(conn: Connection, name: str, story_id: uuid.UUID) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in conn.execute(q(name), {"story_id": story_id})]


def load_story(conn: Connection, story_id: uuid.UUID) -> dict[str, Any]:
    """The story as the JSON export's document (without image bytes; `images[].file_path` names them)."""
    story = conn.execute(q("export_story_row"), {"story_id": story_id}).fetchone()
    if story is None:
        raise StoryNotFound(f"no story with id {story_id}")
    story = {k: plain(v) for k, v in story.items()}
    chapters = _rows(conn, "export_chapters", story_id)
    scenes = _rows(conn, "export_scenes", story_id)
    images = _rows(conn, "export_images", story_id)
    emotions = _rows(conn, "export_emotions", story_id)
    by_chapter: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in chapters}
    by_scene: dict[str, dict[str, Any]] = {}
    for scene in scenes:
        scene["images"], scene["emotions"] = [], []
        by_chapter[scene.pop("chapter_id")].append(scene)
        by_scene[scene["id"]] = scene
    for image in images:
        by_scene[image.pop("scene_id")]["images"].append(image)
    for emotion in emotions:
        by_scene[emotion.pop("scene_id")]["emotions"].append(emotion)
    for chapter in chapters:
        chapter["scenes"] = by_chapter[chapter["id"]]
    values = _rows(conn, "export_custom_field_values", story_id)
    fields = _rows(conn, "export_custom_fields", story_id)
    for field in fields:
        field["values"] = [v for v in values if v["custom_field_id"] == field["id"]]
        for v in field["values"]:
            del v["custom_field_id"]
    owner = {"email": story.pop("owner_email"), "display_name": story.pop("owner_name")}
    story.pop("user_id")
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "story": {**story, "author": owner},
        "characters": _rows(conn, "export_characters", story_id),
        "locations": _rows(conn, "export_locations", story_id),
        "chapters": chapters,
        "emotion_transitions": _rows(conn, "export_transitions", story_id),
        "custom_fields": fields,
    }


def author_name(data: dict[str, Any]) -> str:
    author = data["story"].get("author") or {}
    return author.get("display_name") or (author.get("email") or "").split("@")[0] or "Unknown author"
