"""JSON: the whole story in the documented, versioned `enchant-story` format (schema:
`story.schema.json` beside this file). With images, each image's original file is inlined as base64 so
that `enchant-worker import` can rebuild the story on another instance. Written chapter by chapter: one
chapter's images are in memory at a time."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from enchant_worker.export.images import BadImage, PictureCache, file_sha256

SUFFIX, MEDIA_TYPE = ".json", "application/json"
SCHEMA_PATH = Path(__file__).with_name("story.schema.json")
IMAGE_MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def write(
    data: dict[str, Any],
    out: BinaryIO,
    progress: Callable[[int, int], None],
    *,
    include_images: bool,
    pictures: PictureCache,
    notes: list[str],
) -> None:
    def dump(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    head = {k: v for k, v in data.items() if k != "chapters"}
    head["includes_image_files"] = include_images
    text = dump(head)
    out.write(text[:-1] + b',"chapters":[')  # the head's closing brace opens the chapter list instead
    total = len(data["chapters"])
    for index, chapter in enumerate(data["chapters"]):
        scenes = [
            {**scene, "images": [_image(i, include_images, pictures, notes) for i in scene["images"]]}
            for scene in chapter["scenes"]
        ]
        out.write((b"," if index else b"") + dump({**chapter, "scenes": scenes}))
        progress(index + 1, total)
    out.write(b'],"notes":' + dump(notes) + b"}\n")  # last: images found missing while writing add notes


def _image(row: dict[str, Any], include: bool, pictures: PictureCache, notes: list[str]) -> dict[str, Any]:
    image = {k: v for k, v in row.items() if k not in ("file_path", "content_hash")}
    image["media_type"] = IMAGE_MEDIA_TYPES.get(
        Path(row["file_path"]).suffix.lower(), "application/octet-stream"
    )
    try:
        path = pictures.resolve(row["file_path"])
        if not path.is_file():
            raise BadImage(f"{Path(row['file_path']).name}: file missing from storage")
        image["sha256"] = file_sha256(path)
        if include:
            image["data"] = base64.b64encode(path.read_bytes()).decode()
    except (BadImage, OSError) as exc:
        image["sha256"] = None
        notes.append(f"image {row['id']}: file not included ({exc})")
    return image


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())
