"""Content-addressed storage paths for generated files, and the cache headers that go with them.

A file stored under the SHA-256 of its bytes never changes at that path, so it can be served with
`Cache-Control: immutable` and cached forever by browsers and CDNs (the seed's generated_images:
ttl indefinite). The same image generated twice is stored once.

    path = content_address(png_bytes)             # "images/3f/2b/3f2b...c4e1.png"
    storage.write(path, png_bytes)                # under ENCHANT_STORAGE_DIR, or the S3 key
    headers = immutable_headers(path)             # for the API's file response
"""

from __future__ import annotations

import hashlib
import re

IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
_ADDRESSED = re.compile(r"^(?:[a-z0-9_-]+/)?[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})(\.[a-z0-9]{1,8})?$")
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_FOLDER = re.compile(r"^[a-z0-9_-]+$")


def content_hash(data: bytes) -> str:
    """The SHA-256 of the bytes, in hex (what images.content_hash holds)."""
    return hashlib.sha256(data).hexdigest()


def content_address(data: bytes, suffix: str = ".png", folder: str = "images") -> str:
    """The relative storage path of these bytes: FOLDER/ab/cd/<sha256>SUFFIX (two fan-out levels keep
    folders small). Always '/'-separated."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"content_address needs bytes, got {type(data).__name__}")
    suffix = suffix.lower()
    if suffix and not _SUFFIX.match(suffix):
        raise ValueError(f"suffix must look like '.png', got {suffix!r}")
    if not _FOLDER.match(folder):
        raise ValueError(f"folder must be one lowercase path segment, got {folder!r}")
    digest = content_hash(bytes(data))
    return f"{folder}/{digest[:2]}/{digest[2:4]}/{digest}{suffix}"


def address_hash(path: str) -> str | None:
    """The content hash a content-addressed path carries, or None for any other path."""
    match = _ADDRESSED.match(path)
    return match.group(1) if match else None


def immutable_headers(path: str) -> dict[str, str]:
    """Response headers for a stored file: immutable caching and a strong ETag for content-addressed
    paths; a short revalidated cache for anything else (its content may change)."""
    digest = address_hash(path)
    if digest is None:
        return {"Cache-Control": "public, max-age=60, must-revalidate"}
    return {"Cache-Control": IMMUTABLE_CACHE_CONTROL, "ETag": f'"{digest}"'}
