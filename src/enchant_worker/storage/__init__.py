"""Where generated images, LoRA files and exports live: a local folder or S3-compatible object storage,
chosen by ENCHANT_STORAGE_URL (`file:///abs/path` or `s3://bucket/prefix`); unset, the folder
ENCHANT_STORAGE_DIR (default `<home>/storage`).

    storage = storage_for(settings)
    storage.put_bytes(content_address(png), png)
    path = local_copy(storage, key, settings.storage_cache)   # a real file, for libraries that need one
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from enchant_worker.content_address import address_hash
from enchant_worker.storage.base import (
    Storage,
    StorageConfigError,
    StorageUnavailable,
    StoredFileMissing,
    check_key,
)
from enchant_worker.storage.local import LocalStorage

__all__ = [
    "Storage",
    "StorageConfigError",
    "StorageUnavailable",
    "StoredFileMissing",
    "check_key",
    "fetch_folder",
    "from_url",
    "local_copy",
    "parse_storage_url",
    "remote",
    "storage_for",
    "where",
    "working_folder",
]

VARIABLE = "ENCHANT_STORAGE_URL"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_made: dict[tuple, Storage] = {}


def parse_storage_url(url: str) -> tuple[str, str, str]:
    """('file', absolute path, '') or ('s3', bucket, prefix); ValueError naming ENCHANT_STORAGE_URL
    and what to write instead."""
    parts = urlsplit(url.strip())
    if parts.query or parts.fragment:
        raise ValueError(f"{VARIABLE}={url!r}: no query or fragment allowed")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"{VARIABLE}={url!r}: write an absolute folder as file:///abs/path")
        return "file", unquote(parts.path), ""
    if parts.scheme == "s3":
        if "@" in parts.netloc or ":" in parts.netloc:
            raise ValueError(
                f"{VARIABLE}: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a non-AWS server)"
            )
        if not _BUCKET.match(parts.netloc):
            raise ValueError(
                f"{VARIABLE}={url!r}: {parts.netloc!r} is not a bucket name (3-63 lowercase "
                "letters, digits, '.' or '-'); write s3://bucket/prefix"
            )
        prefix = parts.path.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except ValueError:
                raise ValueError(f"{VARIABLE}={url!r}: the prefix {prefix!r} is not a plain path") from None
        return "s3", parts.netloc, prefix
    raise ValueError(f"{VARIABLE}={url!r}: use file:///abs/path or s3://bucket/prefix")


def from_url(url: str) -> Storage:
    """The backend a URL names. S3's endpoint comes from ENCHANT_S3_ENDPOINT_URL or AWS_ENDPOINT_URL, its
    region from AWS_REGION / AWS_DEFAULT_REGION and its credentials from boto3's usual sources; none found
    is a StorageConfigError now rather than at the first upload."""
    try:
        kind, where, prefix = parse_storage_url(url)
    except ValueError as exc:
        raise StorageConfigError(str(exc)) from None
    if kind == "file":
        return LocalStorage(Path(where))
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise StorageConfigError(
            f"{VARIABLE} is {url} but no S3 credentials were found: set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    endpoint = os.environ.get("ENCHANT_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None
    # Short timeouts and few retries: an outage should fail the job quickly; the queue retries it later.
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint else None,
    )
    client = session.client(
        "s3", endpoint_url=endpoint, region_name=session.region_name or "us-east-1", config=config
    )
    from enchant_worker.storage.s3 import S3Storage

    return S3Storage(client, where, prefix)


def storage_for(settings) -> Storage:
    """The process's storage for these settings (made once: boto3 clients are thread-safe and reusable)."""
    url = getattr(settings, "storage_url", None) or Path(settings.storage).resolve().as_uri()
    key = (url, os.environ.get("ENCHANT_S3_ENDPOINT_URL"), os.environ.get("AWS_ENDPOINT_URL"))
    if key not in _made:
        _made[key] = from_url(url)
    return _made[key]


def remote(settings) -> Storage | None:
    """The object storage these settings name, or None when files live in the local folder
    `settings.storage` (then code that works on files in place keeps doing so)."""
    storage = storage_for(settings)
    return None if isinstance(storage, LocalStorage) else storage


def where(settings, key: str) -> str:
    """What to show a person for a stored file: its absolute local path, or its s3:// URL."""
    objects = remote(settings)
    return f"{objects.url}/{key}" if objects is not None else str((Path(settings.storage) / key).resolve())


def working_folder(settings) -> Path:
    """Where files are made before they are stored: the storage folder itself, or the cache with S3."""
    return Path(settings.storage) if remote(settings) is None else settings.storage_cache


def fetch_folder(storage: Storage, prefix: str, root: Path) -> list[Path]:
    """Copies every object under the folder `prefix` to the same relative path under `root` (an upload
    made on another host, before training reads its files; uploads never change, so a file there is kept)."""
    paths = []
    for key in storage.list(prefix):
        target = Path(root) / check_key(key)
        if not target.is_file():
            _download(storage, key, target)
        paths.append(target)
    return paths


def local_copy(storage: Storage, key: str, cache_dir: Path) -> Path:
    """A local file holding the object, for libraries that need a path (diffusers loading a LoRA, export
    writers): the file itself for a local folder, else a copy under `cache_dir`, reused while the object
    is unchanged (content-addressed keys never change; others are compared by their version, an ETag)."""
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise StoredFileMissing(f"no stored file {key}")
        return path
    target = Path(cache_dir) / check_key(key)
    if address_hash(key) and target.is_file():
        return target
    version = None if address_hash(key) else storage.version(key)
    stamp = target.with_name(f".{target.name}.version")
    if version is not None and target.is_file() and stamp.is_file() and stamp.read_text() == version:
        return target
    _download(storage, key, target)
    if version is not None:
        stamp.write_text(version)
    return target


def _download(storage: Storage, key: str, target: Path) -> None:
    """The object into `target`, through a temporary file beside it (never half a file under its name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, storage.open(key) as body:
            while chunk := body.read(1 << 20):
                out.write(chunk)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
