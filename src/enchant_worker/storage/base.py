"""The storage interface every part uses for generated images, LoRA files and exports.

Keys are storage-relative, '/'-separated paths (`images/3f/2b/<sha256>.png`, `loras/<id>/x.safetensors`,
`exports/…`): what the database rows hold and what users see. A key never names a server path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, Protocol

from enchant_worker.errors import ConfigurationError, EnchantError

_SEGMENT = re.compile(r"^[^/\\\x00]+$")


class StorageUnavailable(EnchantError):
    """The object storage cannot be reached; the job is retried with backoff (check the S3 endpoint)."""


class StoredFileMissing(EnchantError, FileNotFoundError):
    """No stored file has that key."""


class StorageConfigError(ConfigurationError):
    """ENCHANT_STORAGE_URL or the object storage's credentials are invalid."""


def check_key(key: str) -> str:
    """The key itself, or ValueError when it is not a plain relative path (absolute, '..', '.', empty
    segments, backslashes or NUL): keys come from database rows, which callers may have written."""
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise ValueError(f"storage key must be a relative path, got {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise ValueError(f"storage key {key!r} has an invalid segment {segment!r}")
    return key


class Storage(Protocol):
    url: str  # the ENCHANT_STORAGE_URL it was made from (never with credentials)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Stores `data` under `key`, atomically: readers see the old object or the whole new one."""

    def put_file(self, key: str, path: Path) -> None:
        """Stores a local file (multipart for large ones; a failed upload leaves nothing visible)."""

    def get_bytes(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object (close it); StoredFileMissing when there is none."""

    def exists(self, key: str) -> bool: ...

    def version(self, key: str) -> str:
        """A token that changes whenever the object does (S3's ETag); StoredFileMissing when there is none."""

    def list(self, prefix: str) -> list[str]:
        """The keys of the objects under the folder `prefix`, sorted."""

    def delete(self, key: str) -> None:
        """Removes the object; nothing happens when there is none."""

    def url_for(
        self, key: str, expires_s: int, *, content_type: str | None = None, disposition: str | None = None
    ) -> str | None:
        """A presigned GET URL valid for `expires_s` seconds whose answer carries these Content-Type and
        Content-Disposition headers, or None (a local folder has none)."""

    def local_path(self, key: str) -> Path | None:
        """The file itself when the backend is a local folder (served with Range, read in place), else None."""
