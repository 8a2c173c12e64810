"""Files under the storage folder, as the database names them (absolute, or relative to storage)."""

from __future__ import annotations

from pathlib import Path

from enchant_worker.api.errors import NotFound
from enchant_worker.config import Settings

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".safetensors": "application/octet-stream"}


def stored_file(settings: Settings, name: str, what: str) -> Path:
    """The file a row names; 404 when it is missing or a relative name escapes the storage folder."""
    if name.startswith("file://"):
        name = name.removeprefix("file://")
    path = Path(name)
    if not path.is_absolute():
        root = settings.storage.resolve()
        path = (root / path).resolve()
        if not path.is_relative_to(root):
            raise NotFound(f"the file of {what} is outside the storage folder")
    if not path.is_file():
        raise NotFound(f"the file of {what} is missing from storage ({path.name})")
    return path


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
