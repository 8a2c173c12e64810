"""Images: metadata and the file."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from enchant_worker.api import pagination
from enchant_worker.api.auth import READ, check_access, found
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, responses
from enchant_worker.api.files import media_type, stored_file
from enchant_worker.api.routes.exports import SignedLink
from enchant_worker.api.schemas import ImagePage, ImagePublic
from enchant_worker.api.serving import file_response, signed_url
from enchant_worker.api.store import Row
from enchant_worker.api.versions import BASIC_GENERATION

router = APIRouter(prefix="/images", tags=["images"], responses=COMMON)
FEATURE = BASIC_GENERATION


def image_public(row: Row, version: str) -> ImagePublic:
    return ImagePublic(
        **{k: row.get(k) for k in ImagePublic.model_fields if k != "file_url"},
        file_url=f"/{version}/images/{row['id']}/file",
    )


@router.get("", response_model=ImagePage, responses=responses(400))
def list_images(
    request: Request,
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    job_id: uuid.UUID | None = None,
    scene_id: uuid.UUID | None = None,
    story_id: uuid.UUID | None = None,
    lora_id: Annotated[uuid.UUID | None, Query(description="made with this LoRA, or its preview")] = None,
    created_from: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    created_to: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    min_quality: Annotated[
        float | None,
        Query(
            ge=0,
            le=1,
            allow_inf_nan=False,
            description=("quality_score at least this (0-1); images without a score are left out"),
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ImagePage:
    """The images this key may see, newest first, filtered (`min_quality`: by quality score). Follow `next_cursor` for the next page (a
    changed cursor, or one made for other filters, is a 400)."""
    filters: dict[str, Any] = {
        "job_id": job_id,
        "scene_id": scene_id,
        "story_id": story_id,
        "lora_id": lora_id,
        "created_from": created_from,
        "created_to": created_to,
        "min_quality": min_quality,
    }
    secret = state.secret(store, "cursor")
    rows = store.images(
        viewer=None if principal.is_admin else principal.user_id,
        limit=limit + 1,
        after=pagination.position(secret, cursor, filters),
        **filters,
    )
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return ImagePage(
        items=[image_public(r, request.scope["api_version"]) for r in items], next_cursor=next_cursor
    )


@router.get("/{image_id}", response_model=ImagePublic)
def get_image(image_id: uuid.UUID, request: Request, store: StoreDep, principal: PrincipalDep) -> ImagePublic:
    """An image's metadata: prompt, seed, model, parameters, timings, quality."""
    row = found(store.image(image_id), f"image with id {image_id}")
    check_access(store, principal, row, READ, "this image")
    return image_public(row, request.scope["api_version"])


@router.get(
    "/{image_id}/file",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
            "description": "the image file",
        },
        304: {"description": "not modified"},
    },
)
def get_image_file(
    image_id: uuid.UUID, request: Request, store: StoreDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    """The image file (PNG with its generation metadata). Content-addressed files are cached as
    immutable (privately: this URL needs a key); strong ETag and 304."""
    row = found(store.image(image_id), f"image with id {image_id}")
    check_access(store, principal, row, READ, "this image")
    file = stored_file(settings, row["file_path"], f"image {image_id}")
    return file_response(
        request,
        file,
        relative=file.key,
        media_type=media_type(file.name),
        public=False,
        filename=file.name,
        disposition="inline",
    )


@router.get("/{image_id}/link", response_model=SignedLink)
def get_image_link(
    image_id: uuid.UUID,
    store: StoreDep,
    state: StateDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    expires_in: Annotated[int, Query(ge=60, description="seconds (capped by the server)")] = 3600,
) -> SignedLink:
    """A signed URL of the image file, for embedding without an API key until it expires (under
    ENCHANT_PUBLIC_BASE_URL when set)."""
    row = found(store.image(image_id), f"image with id {image_id}")
    check_access(store, principal, row, READ, "this image")
    stored_file(settings, row["file_path"], f"image {image_id}")
    url, expires = signed_url(settings, state.secret(store, "files"), row["file_path"], expires_in)
    return SignedLink(url=url, expires_at=datetime.fromtimestamp(expires, UTC))
