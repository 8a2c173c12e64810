"""LoRA styles: list (own and public), get, train from uploaded images, download, publish."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import Response

from enchant_worker.api import pagination
from enchant_worker.api.auth import Principal, found
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Conflict, Forbidden, Unprocessable, responses
from enchant_worker.api.files import stored_file
from enchant_worker.api.schemas import LoraPage, LoraPublic, LoraTrainingStarted
from enchant_worker.api.serving import file_response
from enchant_worker.api.store import Row, Store
from enchant_worker.api.uploads import store_upload
from enchant_worker.api.versions import LORA_TRAINING
from enchant_worker.intake.training import initiate_lora_training

router = APIRouter(prefix="/loras", tags=["loras"], responses=COMMON)
FEATURE = LORA_TRAINING
MAX_TRIGGER_WORDS = 10


def _lora(store: Store, principal: Principal, lora_id: uuid.UUID, *, write: bool) -> Row:
    row = found(store.lora(lora_id), f"LoRA with id {lora_id}")
    if principal.owns(row["user_id"]) or (not write and row["is_public"]):
        return row
    raise Forbidden(
        f"this key may not {'change' if write else 'read'} LoRA {lora_id} (another user's, not public)"
    )


def _trigger_words(text: str) -> list[str]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if len(words) > MAX_TRIGGER_WORDS or any(len(w) > 50 or "\x00" in w for w in words):
        raise Unprocessable(
            ("body", "trigger_words"),
            f"trigger_words: up to {MAX_TRIGGER_WORDS} comma-separated words of 1 to 50 characters each",
        )
    return words


def lora_public(row: Row, version: str = "v2") -> LoraPublic:
    """A LoRA as the API shows it: file references are URLs of this API (the download URL stays the same
    before, during and after training), its training job, base model and preview."""
    status_ = row["status"]
    if status_ == "training" and row.get("job_status") == "pending":
        status_ = "queued"
    preview = row.get("preview_image_id")
    return LoraPublic(
        **{
            k: row.get(k)
            for k in LoraPublic.model_fields
            if k not in ("model_file_url", "status", "training_job_id", "preview_url")
        },
        model_file_url=f"/{version}/loras/{row['id']}/download",
        status=status_,
        training_job_id=row.get("training_job_id") or row.get("job_id"),
        preview_url=f"/{version}/images/{preview}/file" if preview else None,
    )


@router.get("", response_model=LoraPage, responses=responses(400))
def list_loras(
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    scope: Annotated[Literal["visible", "mine", "public"], Query()] = "visible",
    status_: Annotated[Literal["training", "ready", "failed"] | None, Query(alias="status")] = None,
    owner: Annotated[uuid.UUID | None, Query(description="one user's LoRAs")] = None,
    is_public: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> LoraPage:
    """LoRAs this key may use: its own and the public ones (every LoRA for an admin), newest first,
    filtered; follow `next_cursor` for the next page."""
    public = True if scope == "public" else is_public
    filters = {"scope": scope, "status": status_, "owner": owner, "is_public": public}
    secret = state.secret(store, "cursor")
    rows = store.loras(
        viewer=None if principal.is_admin else principal.user_id,
        me=principal.user_id,
        limit=limit + 1,
        status=status_,
        owner=owner,
        is_public=public,
        mine_only=scope == "mine",
        after=pagination.position(secret, cursor, filters),
    )
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return LoraPage(items=[lora_public(r) for r in items], next_cursor=next_cursor)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LoraTrainingStarted,
    responses=responses(413, 415, 429),
)
def train_lora(
    state: StateDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    images: Annotated[list[UploadFile], File(description="5 to 50 training images (PNG, JPEG, WebP, BMP)")],
    name: Annotated[str, Form(min_length=1, max_length=100, pattern=r"^[^\x00]+$")],
    description: Annotated[str, Form(max_length=2000, pattern=r"^[^\x00]*$")] = "",
    base_model: Annotated[str | None, Form(min_length=1, max_length=200, pattern=r"^[^\x00]+$")] = None,
    trigger_words: Annotated[str, Form(max_length=1000, description="comma-separated")] = "",
    # Unset knobs take the defaults the CLI's `train` gets too (the job spec's, and intake's from the model).
    learning_rate: Annotated[float | None, Form(ge=1e-6, le=1e-2, description="default 1e-4")] = None,
    batch_size: Annotated[int | None, Form(ge=1, le=16, description="default 1")] = None,
    epochs: Annotated[int | None, Form(ge=1, le=1000, description="default 10 (unless steps)")] = None,
    steps: Annotated[
        int | None, Form(ge=1, le=100_000, description="training steps; wins over epochs")
    ] = None,
    resolution: Annotated[
        int | None, Form(ge=16, le=2048, multiple_of=8, description="default: the base model's image size")
    ] = None,
    rank: Annotated[int | None, Form(ge=1, le=256, description="default 16")] = None,
    alpha: Annotated[float | None, Form(gt=0, le=1024, description="default: the rank")] = None,
    seed: Annotated[int | None, Form(ge=0, le=2**32 - 1, description="default 0")] = None,
) -> LoraTrainingStarted:
    """Start training a LoRA style from uploaded images: the images are checked (413 above the size
    limit, 415 when a file is not an image) and kept as an upload of the caller's, a `lora_models` row
    is created with status `training`, and a `train_lora` job is queued (the same path as
    `POST /v2/jobs` and the CLI's `train`). Poll the job, then the LoRA."""
    words = _trigger_words(trigger_words)
    actor = principal.actor
    upload_id, upload = store_upload(store, state, actor, images)
    knobs = {
        "base_model": base_model,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "epochs": epochs,
        "max_train_steps": steps,
        "resolution": resolution,
        "rank": rank,
        "alpha": alpha,
        "seed": seed,
    }
    request = {
        "name": name,
        "description": description,
        "training_images": [str(upload_id)],
        "trigger_words": words,
        **{k: v for k, v in knobs.items() if v is not None},
    }
    lora_id, job_id = initiate_lora_training(
        store.conn, actor, settings, request, image_count=upload["file_count"]
    )
    return LoraTrainingStarted(lora=lora_public(found(store.lora(lora_id), f"LoRA {lora_id}")), job_id=job_id)


@router.get("/{lora_id}", response_model=LoraPublic)
def get_lora(lora_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> LoraPublic:
    """One LoRA with its training job, error, base model and preview."""
    return lora_public(_lora(store, principal, lora_id, write=False))


@router.get(
    "/{lora_id}/download",
    response_class=Response,
    responses={
        **responses(409),
        200: {"content": {"application/octet-stream": {}}, "description": "the .safetensors file"},
    },
)
def download_lora(
    lora_id: uuid.UUID,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    format: Literal["kohya", "diffusers"] = "kohya",
) -> Response:
    """The trained `.safetensors` file, in kohya's format by default (what AUTOMATIC1111, ComfyUI and
    Civitai load; its stem is the name for `<lora:NAME:W>` and its hash the one in PNGs' `Lora hashes`),
    or `?format=diffusers` (diffusers/peft keys). Each download is counted in `download_count`."""
    row = _lora(store, principal, lora_id, write=False)
    if row["status"] != "ready":
        raise Conflict(f"LoRA {lora_id} is {row['status']}; only a ready LoRA can be downloaded")
    file = stored_file(settings, row["model_file_url"], f"LoRA {lora_id}")
    stem = file.name.removesuffix(".safetensors")
    filename = file.name
    if format == "kohya":
        # LoRAs trained before both files were written have only the diffusers one
        file = file.sibling(f"{stem}.kohya.safetensors") or file
    else:
        filename = f"{stem}.diffusers.safetensors"
    store.count_download(lora_id)
    return file_response(
        request,
        file,
        relative=file.key,
        media_type="application/octet-stream",
        public=False,
        filename=filename,
    )


def _set_public(store: Store, principal: Principal, lora_id: uuid.UUID, public: bool) -> Row:
    row = _lora(store, principal, lora_id, write=True)
    if public and row["status"] != "ready":
        raise Conflict(f"LoRA {lora_id} is {row['status']}; only a ready LoRA can be published")
    found(store.set_lora_public(lora_id, public), f"LoRA with id {lora_id}")
    return found(store.lora(lora_id), f"LoRA with id {lora_id}")


@router.post("/{lora_id}/publish", response_model=LoraPublic, responses=responses(409))
def publish_lora(lora_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> LoraPublic:
    """Make a ready LoRA public: every key can then list, read and download it."""
    return lora_public(_set_public(store, principal, lora_id, True))


@router.post("/{lora_id}/unpublish", response_model=LoraPublic)
def unpublish_lora(lora_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> LoraPublic:
    return lora_public(_set_public(store, principal, lora_id, False))
