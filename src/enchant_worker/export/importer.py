"""`enchant-worker import FILE.json`: loads a JSON export (format `enchant-story`, version 1) into this
database, ids kept, in one transaction, so a backup moves between instances and a round trip gives the
same story. Image files inlined in the export are written to storage under their content address."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from enchant_worker.content_address import content_address
from enchant_worker.db.connection import Connection, one
from enchant_worker.export.story_data import FORMAT_NAME, FORMAT_VERSION
from enchant_worker.sql import q
from enchant_worker.storage import Storage

SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class ImportFailed(Exception):
    """The file cannot be imported."""


def read_export(path: Path) -> dict[str, Any]:
    """The document, checked against the schema; errors say what to do."""
    import jsonschema

    from enchant_worker.export.json_writer import schema

    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ImportFailed(f'{path}: not an Enchant story export (expected "format": "{FORMAT_NAME}")')
    if data.get("version") != FORMAT_VERSION:
        raise ImportFailed(
            f"{path}: export format version {data.get('version')!r} is not supported; this "
            f"enchant-worker reads version {FORMAT_VERSION}. Export the story again with this "
            f"version, or upgrade enchant-worker on this instance."
        )
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise ImportFailed(
            f"{path}: does not match the story schema at {where}: {first.message}"
            + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        )
    return data


def import_story(
    conn: Connection,
    data: dict[str, Any],
    storage_root: Path,
    *,
    owner_email: str | None = None,
    storage: Storage | None = None,
) -> uuid.UUID:
    """Inserts the story with all it holds; returns its id. Refuses a story whose id is already here.
    Images go under `storage_root`, or into `storage` (object storage) when given."""
    story = data["story"]
    author = story.get("author") or {}
    email = owner_email or author.get("email")
    if not email:
        raise ImportFailed("the export names no author email: pass --owner EMAIL")
    written: list[Path] = []
    try:
        with conn.transaction():
            if one(conn.execute(q("import_story_exists"), {"id": story["id"]}))["found"]:
                raise ImportFailed(
                    f"story {story['id']} already exists in this database; delete it first "
                    "or import into another instance"
                )
            user_id = one(
                conn.execute(
                    q("import_user_by_email"), {"email": email, "display_name": author.get("display_name")}
                )
            )["id"]
            conn.execute(
                q("import_story"),
                {
                    **_pick(
                        story,
                        "id",
                        "title",
                        "description",
                        "genre",
                        "style_preference",
                        "created_at",
                        "updated_at",
                    ),
                    "user_id": user_id,
                },
            )
            for ch in data["characters"]:
                conn.execute(q("import_character"), {**ch, "story_id": story["id"]})
            for loc in data["locations"]:
                conn.execute(q("import_location"), {**loc, "story_id": story["id"]})
            for chapter in data["chapters"]:
                conn.execute(
                    q("import_chapter"),
                    {
                        **_pick(chapter, "id", "chapter_number", "title", "content", "created_at"),
                        "story_id": story["id"],
                    },
                )
                for scene in chapter["scenes"]:
                    _scene(conn, scene, chapter["id"], user_id, storage_root, written, storage)
            for t in data["emotion_transitions"]:
                conn.execute(q("import_transition"), t)
            for field in data["custom_fields"]:
                conn.execute(
                    q("import_custom_field"),
                    {
                        **_pick(field, "id", "field_name", "field_type", "applies_to", "created_at"),
                        "default_value": _json(field["default_value"]),
                        "story_id": story["id"],
                    },
                )
                for value in field["values"]:
                    conn.execute(
                        q("import_custom_field_value"),
                        {**value, "field_value": _json(value["field_value"]), "custom_field_id": field["id"]},
                    )
    except psycopg.Error as exc:
        raise ImportFailed(f"the export could not be loaded: {exc.diag.message_primary or exc}") from None
    return uuid.UUID(story["id"])


def _pick(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: row.get(n) for n in names}


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)


def _scene(
    conn: Connection,
    scene: dict[str, Any],
    chapter_id: str,
    user_id: uuid.UUID,
    storage_root: Path,
    written: list[Path],
    storage: Storage | None,
) -> None:
    conn.execute(
        q("import_scene"),
        {
            **_pick(
                scene,
                "id",
                "scene_number",
                "title",
                "content",
                "summary",
                "emotional_tone",
                "location_id",
                "created_at",
            ),
            "chapter_id": chapter_id,
        },
    )
    for character_id in scene["character_ids"]:
        conn.execute(q("import_scene_character"), {"scene_id": scene["id"], "character_id": character_id})
    for e in scene["emotions"]:
        conn.execute(
            q("import_emotion"),
            {**e, "scene_id": scene["id"], "secondary_emotions": _json(e["secondary_emotions"])},
        )
    for image in scene["images"]:
        if "data" not in image:
            continue  # the export did not carry the file: the image cannot be shown here
        data = base64.b64decode(image["data"], validate=True)
        digest = hashlib.sha256(data).hexdigest()
        if image["sha256"] and image["sha256"] != digest:
            raise ImportFailed(f"image {image['id']}: its data does not match its sha256 (damaged file)")
        relative = content_address(data, SUFFIXES.get(image["media_type"], ".png"))
        target = storage_root / relative
        if storage is not None:
            if not storage.exists(relative):
                storage.put_bytes(relative, data)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".import-{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            tmp.replace(target)
            written.append(target)
        conn.execute(
            q("import_image"),
            {
                **_pick(
                    image,
                    "id",
                    "provider",
                    "model_name",
                    "prompt",
                    "negative_prompt",
                    "seed",
                    "width",
                    "height",
                    "user_rating",
                    "created_at",
                ),
                "parameters": Jsonb(image["parameters"]),
                "scene_id": scene["id"],
                "user_id": user_id,
                "file_path": relative,
                "content_hash": digest,
            },
        )
