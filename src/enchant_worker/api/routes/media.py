"""`/media/<storage path>`: stored files for browsers and CDNs, without an API key.

Served when the URL carries a valid, unexpired signature (made by `/v1/images/{id}/link` or
`/v1/exports/{id}/link`), or when the file is an image of a published community story (then cached
publicly and forever: its name is its content hash). Anything else is a 404 that says nothing of what
exists."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from enchant_worker.api.deps import SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import NotFound, responses
from enchant_worker.api.files import media_type as media_type_of
from enchant_worker.api.files import stored_file
from enchant_worker.api.serving import check_signature, file_response
from enchant_worker.content_address import address_hash
from enchant_worker.db.connection import one
from enchant_worker.sql import q

router = APIRouter(tags=["media"])
EXPORT_TYPES = {
    ".pdf": "application/pdf",
    ".epub": "application/epub+zip",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".mp4": "video/mp4",
    ".zip": "application/zip",
}


@router.get(
    "/media/{path:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "application/octet-stream": {}}, "description": "the file"},
        206: {"description": "part of the file (Range)"},
        304: {"description": "not modified"},
        **responses(404),
    },
)
def get_media(
    path: str,
    request: Request,
    store: StoreDep,
    state: StateDep,
    settings: SettingsDep,
    expires: Annotated[int | None, Query()] = None,
    sig: Annotated[str | None, Query(max_length=128)] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    """A content-addressed stored file: signed (private) or a published story's image (public)."""
    missing = NotFound("no such file, or the link has expired")
    if address_hash(path) is None:
        raise missing
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    kind = EXPORT_TYPES.get(suffix)
    if check_signature(state.secret(store, "files"), path, expires, sig, name) is None:
        left_s = max(0, int((expires or 0) - time.time()))
        file = stored_file(settings, path, "this link")
        return file_response(
            request,
            file,
            relative=path,
            media_type=kind or media_type_of(file.name),
            public=False,
            filename=name,
            cache=f"private, max-age={left_s}",
        )
    if one(store.conn.execute(q("media_public_image"), {"path": path}))["public"]:
        file = stored_file(settings, path, "this image")
        return file_response(
            request,
            file,
            relative=path,
            media_type=media_type_of(file.name),
            public=True,
            disposition="inline",
        )
    raise missing
