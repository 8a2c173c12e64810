"""Uploaded training images: size limits (413), a check that each file is an image (415), and the
upload they become (a folder of the caller's under storage, an `uploads` row)."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from enchant_worker.api.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType

if TYPE_CHECKING:
    from enchant_worker.api.deps import ApiState
    from enchant_worker.api.store import Store
    from enchant_worker.intake import Actor

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
MIN_IMAGE_SIDE_PX = 16
MAX_IMAGE_PIXELS = 40_000_000  # above this an image is treated as a decompression bomb
READ_CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class CheckedImage:
    upload: UploadFile
    suffix: str
    width: int
    height: int


def check_images(
    files: list[UploadFile], *, max_file_bytes: int, min_count: int, max_count: int
) -> list[CheckedImage]:
    """Each upload must be a PNG, JPEG, WebP or BMP image within the size limit; the first problem is
    reported naming the file (`images[2] (cat.txt)`)."""
    from PIL import Image, UnidentifiedImageError  # Pillow loads in ~50 ms: only when an upload comes

    if not min_count <= len(files) <= max_count:
        raise Unprocessable(
            ("body", "images"),
            f"images: between {min_count} and {max_count} training images are needed, got {len(files)}",
        )
    checked = []
    for i, upload in enumerate(files):
        where = f"images[{i}] ({upload.filename or 'unnamed'})"
        size = upload.size if upload.size is not None else _size(upload)
        if size > max_file_bytes:
            raise PayloadTooLarge(
                f"{where}: {size} bytes, above the limit of {max_file_bytes} bytes per image"
            )
        upload.file.seek(0)
        try:
            with Image.open(upload.file) as im:
                fmt, (width, height) = im.format, im.size
                if fmt in IMAGE_FORMATS and width * height <= MAX_IMAGE_PIXELS:
                    im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise UnsupportedMediaType(
                f"{where}: not an image Pillow can read; upload PNG, JPEG, WebP or BMP files"
            ) from None
        if fmt not in IMAGE_FORMATS:
            raise UnsupportedMediaType(
                f"{where}: {fmt} images are not accepted; upload PNG, JPEG, WebP or BMP"
            )
        if width * height > MAX_IMAGE_PIXELS:
            raise PayloadTooLarge(f"{where}: {width}x{height} pixels, above the limit of {MAX_IMAGE_PIXELS}")
        if min(width, height) < MIN_IMAGE_SIDE_PX:
            raise Unprocessable(
                ("body", "images", i),
                f"{where}: {width}x{height} pixels; each side must be at least {MIN_IMAGE_SIDE_PX}",
            )
        checked.append(CheckedImage(upload, IMAGE_FORMATS[fmt], width, height))
    return checked


def _size(upload: UploadFile) -> int:
    upload.file.seek(0, 2)
    return upload.file.tell()


def save_images(images: list[CheckedImage], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(image.upload.filename or "image").stem).strip("-")[:60]
        path = folder / f"{i:03d}-{stem or 'image'}{image.suffix}"
        image.upload.file.seek(0)
        with path.open("wb") as out:
            while chunk := image.upload.file.read(READ_CHUNK_BYTES):
                out.write(chunk)
        paths.append(path)
    return paths


class BodyLimit:
    """Refuses request bodies above `max_bytes` with a 413 naming the limit, on the requests `applies`
    selects: at once when Content-Length says so, or as soon as a chunked body passes the limit."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, applies: Callable[[Scope], bool], what: str, setting: str
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.applies = applies
        self.message = (
            f"{what} is larger than the limit of {max_bytes} bytes ({_size_text(max_bytes)}, "
            f"set by {setting})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited_receive() -> Message:
            # An HTTPException passes through FastAPI's body parsing unchanged and becomes a 413.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self.message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


UPLOAD_PATH_SUFFIXES = ("/loras", "/uploads")  # POST: multipart training images, under the upload limit


def is_upload(scope: Scope) -> bool:
    return bool(scope["method"] == "POST" and scope["path"].endswith(UPLOAD_PATH_SUFFIXES))


def is_other_body(scope: Scope) -> bool:
    """Every request that may carry a body and is not an upload: JSON, under the JSON limit."""
    return scope["method"] not in ("GET", "HEAD", "OPTIONS") and not is_upload(scope)


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def store_upload(
    store: Store, state: ApiState, actor: Actor, files: list[UploadFile]
) -> tuple[uuid.UUID, dict[str, Any]]:
    """Checks the images (413, 415), writes them into a new upload of `actor`'s and records it; returns
    the upload's id and row. Nothing is left behind when a step fails."""
    from enchant_worker.intake.training import record_upload, upload_folder

    limits = state.limits
    checked = check_images(
        files,
        max_file_bytes=limits.upload_file_bytes,
        min_count=limits.min_training_images,
        max_count=limits.max_training_images,
    )
    upload_id = uuid.uuid4()
    folder, relative = upload_folder(state.settings, actor, upload_id)
    try:
        paths = save_images(checked, folder)
        row = record_upload(store.conn, actor, upload_id, relative, paths, state.settings)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload_id, row
