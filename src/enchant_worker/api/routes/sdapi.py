"""AUTOMATIC1111's web API under /sdapi/v1: every txt2img is a queued generate_image job (durable,
authorised and counted by `intake.submit`), awaited on its row; the answers have AUTOMATIC1111's shapes.
Authenticate with the API key as `Authorization: Bearer KEY` or as the password of HTTP Basic."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from psycopg.types.json import Jsonb

from enchant_worker import __version__
from enchant_worker.api.auth import Principal
from enchant_worker.api.compat import a1111_models as m
from enchant_worker.api.compat.common import caller, job_images, principal_ref, route_class, wait_for_job
from enchant_worker.api.deps import ApiState
from enchant_worker.api.errors import ApiError, BadRequest
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.jobspecs.generate_image import COUNT_RANGE, SAMPLER_NAMES
from enchant_worker.model_catalog import ModelRegistry, ModelSpec, model_sha256, model_short_hash
from enchant_worker.queue import JobQueue
from enchant_worker.sql import q
from enchant_worker.storage import storage_for

router = APIRouter(
    prefix="/sdapi/v1",
    tags=["automatic1111"],
    include_in_schema=False,
    route_class=route_class(m.error_body, m.auth_headers),
)
LORA_SUFFIX = ".safetensors"
_TITLE_HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")


class GenerationFailed(ApiError):
    """The job failed."""

    status_code = 500


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _models(state: ApiState) -> ModelRegistry:
    return ModelRegistry.from_settings(state.settings)


def _title(spec: ModelSpec) -> str:
    short = model_short_hash(spec)
    return f"{spec.name} [{short}]" if short else spec.name


def _checkpoint(registry: ModelRegistry, value: str, field: str) -> ModelSpec:
    """A checkpoint as A1111 clients name it: its name, or its title 'name [hash]'."""
    name = _TITLE_HASH.sub("", value.strip())
    if name not in registry.models:
        titles = ", ".join(registry.names())
        raise InvalidJob(
            f"{field}: unknown checkpoint {value!r}; GET /sdapi/v1/sd-models lists them: {titles}"
        )
    return registry.models[name]


def _options(state: ApiState, principal: Principal) -> dict[str, Any]:
    with state.store() as store:
        row = store.conn.execute(q("compat_options_get"), {"principal": principal_ref(principal)}).fetchone()
    return dict(row["options"]) if row else {}


def _sampler(body: m.Txt2ImgRequest, default: str) -> str:
    sampler = body.sampler_name or body.sampler_index or default
    if sampler not in SAMPLER_NAMES:
        raise InvalidJob(
            f"sampler_name: unknown sampler {sampler!r}; GET /sdapi/v1/samplers lists them: "
            + ", ".join(SAMPLER_NAMES)
        )
    scheduler = (body.scheduler or "automatic").strip().lower()
    if scheduler not in m.SCHEDULERS:
        raise InvalidJob(
            f"scheduler: unknown scheduler {body.scheduler!r}; GET /sdapi/v1/schedulers lists them: "
            + ", ".join(m.SCHEDULERS)
        )
    if scheduler == "karras":
        if sampler.endswith("Karras"):
            return sampler
        if sampler not in m.KARRAS_SAMPLERS:
            raise InvalidJob(
                f"scheduler: karras goes with {', '.join(m.KARRAS_SAMPLERS)} here, not {sampler!r}"
            )
        return m.KARRAS_SAMPLERS[sampler]
    return sampler


def metadata_of(body: m.Txt2ImgRequest, model: ModelSpec) -> dict[str, Any]:
    """The generate_image job an A1111 txt2img request asks for."""
    count = body.batch_size * body.n_iter
    if count > COUNT_RANGE[1]:
        raise InvalidJob(
            f"batch_size: batch_size × n_iter is {body.batch_size} × {body.n_iter} = {count} images; "
            f"one request may ask for at most {COUNT_RANGE[1]} (send several requests)"
        )
    metadata: dict[str, Any] = {
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "steps": body.steps,
        "cfg_scale": body.cfg_scale,
        "width": body.width,
        "height": body.height,
        "sampler": _sampler(body, model.defaults.get("sampler", "Euler")),
        "count": count,
        "model": model.name,
        "story_styles": False,
    }
    if body.seed != -1:
        metadata["seed"] = body.seed
    return metadata


@router.post("/txt2img", response_model=m.ImageResponse)
def txt2img(body: m.Txt2ImgRequest, request: Request) -> dict[str, Any]:
    """Generate images (a queued job); answers when the job has finished."""
    state = _state(request)
    principal = caller(request, state)
    registry = _models(state)
    wanted = body.override_settings.get("sd_model_checkpoint") or _options(state, principal).get(
        "sd_model_checkpoint"
    )
    spec = (
        _checkpoint(registry, str(wanted), "override_settings.sd_model_checkpoint")
        if wanted
        else registry.get(None)
    )
    metadata = metadata_of(body, spec)
    with state.store() as store:
        job_id = submit(store.conn, principal.actor, JobRequest("generate_image", metadata), state.settings)
    row = wait_for_job(state, job_id)
    if row["status"] == "failed":
        raise GenerationFailed(f"job {job_id} failed: {row['error_message']}")
    images = job_images(storage_for(state.settings), row["result"]) if row["status"] == "completed" else []
    result = row["result"] or {}
    parameters = result.get("parameters") or {}
    seeds = [img.seed for img in images]
    notes = []
    if body.subseed != -1 or body.subseed_strength:
        notes.append("subseed and subseed_strength are ignored (variation seeds are not supported)")
    if row["status"] == "cancelled":
        notes.append("interrupted: the job was cancelled before its images were written")
    info = {
        "prompt": body.prompt,
        "all_prompts": [body.prompt] * len(images),
        "negative_prompt": body.negative_prompt,
        "all_negative_prompts": [body.negative_prompt] * len(images),
        "seed": seeds[0] if seeds else body.seed,
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(images),
        "subseed_strength": 0,
        "width": parameters.get("width", body.width),
        "height": parameters.get("height", body.height),
        "sampler_name": parameters.get("sampler", metadata["sampler"]),
        "cfg_scale": parameters.get("cfg_scale", body.cfg_scale),
        "steps": parameters.get("steps", body.steps),
        "batch_size": body.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": spec.name,
        "sd_model_hash": model_short_hash(spec),
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": 0,
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": [img.parameters for img in images],
        "styles": body.styles,
        "job_timestamp": row["created_at"].astimezone(UTC).strftime("%Y%m%d%H%M%S"),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
        "version": f"enchant-worker {__version__}",
        "job_id": str(job_id),
        "images": [img.path for img in images],
        "notes": notes,
        "interrupted": row["status"] == "cancelled",
    }
    encoded = [base64.b64encode(img.data).decode("ascii") for img in images] if body.send_images else []
    return {"images": encoded, "parameters": body.model_dump(), "info": json.dumps(info)}


@router.get("/sd-models")
def sd_models(request: Request) -> list[dict[str, Any]]:
    state = _state(request)
    caller(request, state)
    out = []
    for spec in _models(state).models.values():
        out.append(
            {
                "title": _title(spec),
                "model_name": spec.name,
                "hash": model_short_hash(spec),
                "sha256": model_sha256(spec),
                "filename": spec.path.name,
                "config": None,
            }
        )
    return out


@router.get("/loras")
def loras(request: Request) -> list[dict[str, Any]]:
    """The LoRAs this caller may name in `<lora:NAME:WEIGHT>`: theirs, public ones, and LoRA files."""
    state = _state(request)
    principal = caller(request, state)
    with state.store() as store:
        rows = store.conn.execute(
            q("compat_loras"), {"user_id": principal.user_id, "admin": principal.is_admin}
        ).fetchall()
    found = {
        r["stem"]: {
            "name": r["stem"],
            "alias": r["name"],
            "path": f"{r['stem']}{LORA_SUFFIX}",
            "metadata": {
                "id": str(r["id"]),
                "trigger_words": list(r["trigger_words"] or []),
                "public": bool(r["is_public"]),
            },
        }
        for r in rows
    }
    settings = state.settings
    for folder in [
        Path(settings.models_dir) / "loras",
        Path(settings.storage) / "loras",
        *map(Path, settings.lora_dirs),
    ]:
        if folder.is_dir():
            for path in sorted(folder.glob(f"*{LORA_SUFFIX}")):
                found.setdefault(
                    path.stem, {"name": path.stem, "alias": path.stem, "path": path.name, "metadata": {}}
                )
    return sorted(found.values(), key=lambda x: x["name"])


@router.get("/samplers")
def samplers(request: Request) -> list[dict[str, Any]]:
    caller(request, _state(request))
    return [{"name": name, "aliases": [], "options": {}} for name in SAMPLER_NAMES]


@router.get("/schedulers")
def schedulers(request: Request) -> list[dict[str, Any]]:
    caller(request, _state(request))
    return [
        {"name": name, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
        for name, label in m.SCHEDULERS.items()
    ]


@router.get("/scripts")
def scripts(request: Request) -> dict[str, list[str]]:
    """No scripts (clients look for ControlNet and ADetailer here)."""
    caller(request, _state(request))
    return {"txt2img": [], "img2img": []}


@router.get("/options")
def get_options(request: Request) -> dict[str, Any]:
    state = _state(request)
    principal = caller(request, state)
    registry = _models(state)
    chosen = _options(state, principal).get("sd_model_checkpoint")
    spec = registry.models.get(_TITLE_HASH.sub("", chosen)) if chosen else None
    spec = spec or registry.get(None)
    return {
        "sd_model_checkpoint": _title(spec),
        "sd_checkpoint_hash": model_sha256(spec),
        "samples_format": "png",
        "CLIP_stop_at_last_layers": 1,
        "sd_vae": "Automatic",
    }


@router.post("/options")
def set_options(body: m.OptionsUpdate, request: Request) -> dict[str, Any]:
    """Sets this caller's default checkpoint (other options are accepted and ignored)."""
    state = _state(request)
    principal = caller(request, state)
    if body.sd_model_checkpoint is not None:
        spec = _checkpoint(_models(state), body.sd_model_checkpoint, "sd_model_checkpoint")
        with state.store() as store:
            store.conn.execute(
                q("compat_options_merge"),
                {"principal": principal_ref(principal), "options": Jsonb({"sd_model_checkpoint": spec.name})},
            )
    return {}


@router.get("/progress", response_model=m.ProgressResponse)
def progress(request: Request) -> dict[str, Any]:
    """The caller's generate_image jobs: the running one's progress, and how many are waiting."""
    state = _state(request)
    principal = caller(request, state)
    with state.store() as store:
        rows = store.conn.execute(q("compat_active_jobs"), {"user_id": principal.user_id}).fetchall()
    if not rows:
        return {"progress": 0.0, "eta_relative": 0.0, "state": m.ProgressState().model_dump()}
    current = rows[0]
    details = current["progress"] or {}
    step, total = int(details.get("step") or 0), int(details.get("total") or 0)
    fraction = min(1.0, step / total if total else (current["progress_percent"] or 0) / 100)
    eta = 0.0
    if current["started_at"] is not None and fraction > 0:
        elapsed = time.time() - current["started_at"].timestamp()
        eta = max(0.0, elapsed / fraction - elapsed)
    running = current["status"] == "processing"
    state_body = m.ProgressState(
        job=f"job {current['id']}" if running else "",
        job_count=len(rows),
        job_timestamp=current["created_at"].astimezone(UTC).strftime("%Y%m%d%H%M%S"),
        sampling_step=step,
        sampling_steps=total,
    )
    return {
        "progress": fraction,
        "eta_relative": eta,
        "state": state_body.model_dump(),
        "textinfo": details.get("stage"),
    }


@router.post("/interrupt")
def interrupt(request: Request) -> dict[str, Any]:
    """Cancels the caller's running generate_image job (the job stops within one denoising step)."""
    state = _state(request)
    principal = caller(request, state)
    with state.store() as store:
        rows = store.conn.execute(q("compat_active_jobs"), {"user_id": principal.user_id}).fetchall()
        queue = JobQueue(store.conn)
        for row in rows:
            if row["status"] == "processing":
                queue.cancel(row["id"])
    return {}


@router.post("/png-info", response_model=m.PngInfoResponse)
def png_info(body: m.PngInfoRequest, request: Request) -> dict[str, Any]:
    """The generation parameters in a PNG, parsed as AUTOMATIC1111 does (resubmit them to txt2img)."""
    from PIL import Image, UnidentifiedImageError

    caller(request, _state(request))
    raw = body.image.split(",", 1)[1] if body.image.startswith("data:") else body.image
    try:
        data = base64.b64decode(raw, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            items = dict(image.info)
    except (binascii.Error, ValueError):
        raise BadRequest("image: not base64") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f"image: not a readable image ({exc})") from None
    text = items.pop("parameters", "")
    items = {k: v for k, v in items.items() if isinstance(v, str)}
    return {
        "info": text if isinstance(text, str) else "",
        "items": items,
        "parameters": m.a1111_fields(text) if isinstance(text, str) and text else {},
    }
