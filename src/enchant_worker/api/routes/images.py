"""Images: metadata and the file."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from enchant_worker.api.auth import READ, check_access, found
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StoreDep
from enchant_worker.api.errors import COMMON
from enchant_worker.api.files import media_type, stored_file
from enchant_worker.api.schemas import ImagePublic
from enchant_worker.api.store import Row
from enchant_worker.api.versions import BASIC_GENERATION

router = APIRouter(prefix="/images", tags=["images"], responses=COMMON)
FEATURE = BASIC_GENERATION


def image_public(row: Row, version: str) -> ImagePublic:
    return ImagePublic(**{k: row.get(k) for k in ImagePublic.model_fields if k != "file_url"},
                       file_url=f"/{version}/images/{row['id']}/file")


@router.get("", response_model=list[ImagePublic])
def list_images(request: Request, store: StoreDep, principal: PrincipalDep,
                limit: Annotated[int, Query(ge=1, le=200)] = 24) -> list[ImagePublic]:
    """The latest images this key may see, newest first."""
    rows = store.images(viewer=None if principal.is_admin else principal.user_id, limit=limit)
    return [image_public(r, request.scope["api_version"]) for r in rows]


@router.get("/{image_id}", response_model=ImagePublic)
def get_image(image_id: uuid.UUID, request: Request, store: StoreDep, principal: PrincipalDep) -> ImagePublic:
    """An image's metadata: prompt, seed, model, parameters, timings."""
    row = found(store.image(image_id), f"image with id {image_id}")
    check_access(store, principal, row, READ, "this image")
    return image_public(row, request.scope["api_version"])


@router.get("/{image_id}/file", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
                             "description": "the image file"}})
def get_image_file(image_id: uuid.UUID, store: StoreDep, settings: SettingsDep,
                   principal: PrincipalDep) -> FileResponse:
    """The image file (PNG with its generation metadata)."""
    row = found(store.image(image_id), f"image with id {image_id}")
    check_access(store, principal, row, READ, "this image")
    path = stored_file(settings, row["file_path"], f"image {image_id}")
    return FileResponse(path, media_type=media_type(path), filename=path.name)
