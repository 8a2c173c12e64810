"""Uploads: training images kept under the caller's upload area; jobs name them by id."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from enchant_worker.api.auth import found
from enchant_worker.api.deps import PrincipalDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Forbidden, responses
from enchant_worker.api.schemas import UploadPublic
from enchant_worker.api.store import Row
from enchant_worker.api.uploads import store_upload
from enchant_worker.api.versions import LORA_TRAINING

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=COMMON)
FEATURE = LORA_TRAINING


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=UploadPublic, responses=responses(413, 415)
)
def create_upload(
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    images: Annotated[list[UploadFile], File(description="training images (PNG, JPEG, WebP, BMP)")],
) -> Row:
    """Keep training images for later jobs: name the returned id in a `train_lora` job's
    `training_images` (`POST /v2/jobs`). Only its uploader (and admins) may use an upload."""
    _, row = store_upload(store, state, principal.actor, images)
    return row


@router.get("/{upload_id}", response_model=UploadPublic)
def get_upload(upload_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Row:
    row = found(store.upload(upload_id), f"upload with id {upload_id}")
    if not principal.owns(row["user_id"]):
        raise Forbidden(f"upload {upload_id} belongs to another user")
    return row
