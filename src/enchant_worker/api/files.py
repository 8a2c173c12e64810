"""Files in storage, as the database names them (a storage key, or an absolute path of a local file).

With a local folder the API serves the file itself (Range, ETag); with object storage it streams the
object through the API (the S3 endpoint need not be reachable by clients), or with
ENCHANT_STORAGE_PRESIGNED_S redirects to a presigned URL. The caller's rights are checked first either way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from enchant_worker.api.errors import NotFound
from enchant_worker.config import Settings
from enchant_worker.storage import Storage, storage_for

MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".safetensors": "application/octet-stream",
}


@dataclass(frozen=True)
class StoredFile:
    name: str  # the file's own name (the key's last segment)
    key: str | None  # its storage key; None for a row naming an absolute local path
    path: Path | None  # the local file, when there is one
    storage: Storage
    presigned_s: int = 0  # > 0: redirect to a presigned URL of the object, valid this long

    def sibling(self, name: str) -> StoredFile | None:
        """The file `name` in the same folder, when it exists (a LoRA's kohya copy)."""
        key = None if self.key is None else "/".join([*self.key.split("/")[:-1], name])
        if self.path is not None:
            path = self.path.with_name(name)
            return StoredFile(name, key, path, self.storage) if path.is_file() else None
        if key is None or not self.storage.exists(key):
            return None
        return StoredFile(name, key, None, self.storage, self.presigned_s)


def stored_file(settings: Settings, name: str, what: str) -> StoredFile:
    """The file a row names; 404 when it is missing or a relative name escapes storage."""
    storage = storage_for(settings)
    if name.startswith("file://"):
        name = name.removeprefix("file://")
    if Path(name).is_absolute():
        path = Path(name)
        if not path.is_file():
            raise NotFound(f"the file of {what} is missing from storage ({path.name})")
        return StoredFile(path.name, None, path, storage)
    try:
        local = storage.local_path(name)
    except ValueError:
        raise NotFound(f"the file of {what} is outside the storage folder") from None
    if local is not None:
        root = Path(settings.storage).resolve()
        local = local.resolve()
        if not local.is_relative_to(root):
            raise NotFound(f"the file of {what} is outside the storage folder")
        if not local.is_file():
            raise NotFound(f"the file of {what} is missing from storage ({local.name})")
    elif not storage.exists(name):
        raise NotFound(f"the file of {what} is missing from storage ({Path(name).name})")
    return StoredFile(Path(name).name, name, local, storage, 0 if local else settings.storage_presigned_s)


def media_type(name: str | Path) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
