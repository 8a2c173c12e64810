"""Stored files served CDN-ready: strong ETags and 304s, Range requests (video), cache headers, download
names, and signed expiring URLs so a web app can embed private files without handing out an API key.

- Content-addressed files never change at their path: `public, max-age=31536000, immutable` when public,
  `private, max-age=31536000, immutable` when only their owner may see them; anything else
  `private, no-cache`. The ETag is the file's SHA-256 (the path's hash, or computed once and cached).
- `signed_path(secret, path, expires)` gives `/media/<path>?expires=…&sig=…`; HMAC-SHA256 with the
  server's 'files' secret over the path and expiry. `ENCHANT_PUBLIC_BASE_URL` prefixes every URL made.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from enchant_worker.api.files import StoredFile
from enchant_worker.config import Settings
from enchant_worker.content_address import IMMUTABLE_CACHE_CONTROL, address_hash
from enchant_worker.export.names import ascii_filename

PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
PRIVATE_REVALIDATE = "private, no-cache"
MEDIA_PREFIX = "/media/"
_HASH_CACHE_MAX = 4096
_hashes: OrderedDict[tuple[str, int, int], str] = OrderedDict()
_hash_lock = threading.Lock()


def file_etag(path: Path, relative: str | None) -> str:
    """A strong ETag: the SHA-256 the content-addressed name carries, or of the bytes (cached by
    path, size and modification time)."""
    digest = address_hash(relative) if relative else None
    if digest is None:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _hash_lock:
            digest = _hashes.get(key)
        if digest is None:
            sha = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    sha.update(chunk)
            digest = sha.hexdigest()
            with _hash_lock:
                _hashes[key] = digest
                while len(_hashes) > _HASH_CACHE_MAX:
                    _hashes.popitem(last=False)
    return f'"{digest}"'


def cache_control(relative: str | None, *, public: bool) -> str:
    if relative and address_hash(relative):
        return IMMUTABLE_CACHE_CONTROL if public else PRIVATE_IMMUTABLE
    return "public, max-age=300, must-revalidate" if public else PRIVATE_REVALIDATE


def content_disposition(filename: str, kind: str = "attachment") -> str:
    """Both forms: an ASCII `filename=` for old clients and the exact UTF-8 `filename*=`."""
    return f"{kind}; filename=\"{ascii_filename(filename)}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def file_response(
    request: Request,
    file: StoredFile,
    *,
    relative: str | None,
    media_type: str,
    public: bool,
    filename: str | None = None,
    disposition: str = "attachment",
    cache: str | None = None,
) -> Response:
    """The file, or 304 when the caller's copy is current. A local file answers Range requests through
    Starlette (206, If-Range against this strong ETag); an object in S3 storage is streamed whole, with
    the ETag its content address gives (none for other keys), or redirected to a presigned URL."""
    etag = file_etag(file.path, relative) if file.path else _address_etag(relative)
    headers = {
        "Cache-Control": cache or cache_control(relative, public=public),
        "Vary": "Authorization, X-API-Key, Cookie" if not public else "Accept-Encoding",
    }
    if etag:
        headers["ETag"] = etag
    if filename:
        headers["Content-Disposition"] = content_disposition(filename, disposition)
    if etag and _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if file.path is not None:
        return FileResponse(file.path, media_type=media_type, headers=headers)
    assert file.key is not None  # a StoredFile has a path or a key
    # with presigned URLs, the object store serves it (Range included); the URL is this caller's alone
    url = (
        file.storage.url_for(
            file.key,
            file.presigned_s,
            content_type=media_type,
            disposition=headers.get("Content-Disposition"),
        )
        if file.presigned_s
        else None
    )
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})
    body = file.storage.open(file.key)
    return StreamingResponse(_chunks(body), media_type=media_type, headers=headers)


def _address_etag(relative: str | None) -> str | None:
    digest = address_hash(relative) if relative else None
    return f'"{digest}"' if digest else None


def _chunks(body: BinaryIO) -> Iterator[bytes]:
    with body:
        while chunk := body.read(1 << 20):
            yield chunk


def public_url(settings: Settings, path: str) -> str:
    """`path` (starting with '/') under ENCHANT_PUBLIC_BASE_URL when set, else as given."""
    base = (settings.public_base_url or "").rstrip("/")
    return f"{base}{path}"


def signature(secret: bytes, relative: str, expires: int, name: str | None = None) -> str:
    """HMAC-SHA256 over the path, the expiry and the download name (so none can be changed)."""
    return hmac.new(secret, f"{relative}\n{expires}\n{name or ''}".encode(), hashlib.sha256).hexdigest()


def signed_url(
    settings: Settings, secret: bytes, relative: str, expires_in_s: int, filename: str | None = None
) -> tuple[str, int]:
    """An expiring URL of a stored file (storage-relative path) and its expiry (Unix seconds)."""
    expires = int(time.time()) + min(max(1, expires_in_s), settings.signed_url_max_s)
    query = f"expires={expires}&sig={signature(secret, relative, expires, filename)}"
    if filename:
        query += f"&name={quote(filename, safe='')}"
    return public_url(settings, f"{MEDIA_PREFIX}{quote(relative)}?{query}"), expires


def check_signature(
    secret: bytes, relative: str, expires: int | None, sig: str | None, name: str | None = None
) -> str | None:
    """None when the URL is valid now; else why not."""
    if expires is None or sig is None:
        return "missing"
    if expires < time.time():
        return "expired"
    if not hmac.compare_digest(signature(secret, relative, expires, name), sig):
        return "bad signature"
    return None
