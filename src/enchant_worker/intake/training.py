"""The seed's `initiateLoRATraining` and the uploads it trains from: one function for the API's
`POST /v2/loras`, `POST /v2/jobs {"job_type": "train_lora"}` and the CLI's `train`. Torch-free."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from enchant_worker.errors import InvalidJob
from enchant_worker.intake.actor import Actor
from enchant_worker.intake.references import UPLOADS_DIR, check_reference
from enchant_worker.intake.submit import JobRequest, submit
from enchant_worker.jobspecs import READ, Reference, parse
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec
from enchant_worker.sql import q
from enchant_worker.storage import remote

TRAIN_LORA = "train_lora"
LORA_ENTITY = "lora_model"


def upload_folder(settings: Any, actor: Actor, upload_id: uuid.UUID) -> tuple[Path, str]:
    """Where an upload's files go: (absolute folder, its path relative to storage)."""
    relative = f"{UPLOADS_DIR}/{actor.user_id or 'admin'}/{upload_id}"
    return Path(settings.storage) / relative, relative


def record_upload(
    conn, actor: Actor, upload_id: uuid.UUID, relative: str, files: Iterable[Path], settings: Any
) -> dict:
    """The uploads row of files already written into the upload's folder; with object storage the files
    are stored there too, so a worker on another host can train from them."""
    files = list(files)
    if (objects := remote(settings)) is not None:
        for f in files:
            objects.put_file(f"{relative}/{f.name}", f)
    return conn.execute(
        q("intake_upload_create"),
        {
            "id": upload_id,
            "user_id": actor.user_id,
            "purpose": "training_images",
            "folder": relative,
            "file_count": len(files),
            "total_bytes": sum(f.stat().st_size for f in files),
        },
    ).fetchone()


def upload_from_folder(conn, actor: Actor, settings: Any, source: Path) -> uuid.UUID:
    """Copies the files of a local folder (images and caption .txt files) into a new upload (the CLI's
    `train --images DIR`: the worker then reads storage only, as for uploads made through the API)."""
    files = sorted(p for p in Path(source).iterdir() if p.is_file() and not p.name.startswith("."))
    upload_id = uuid.uuid4()
    folder, relative = upload_folder(settings, actor, upload_id)
    folder.mkdir(parents=True)
    try:
        copied = [Path(shutil.copy2(f, folder / f.name)) for f in files]
        record_upload(conn, actor, upload_id, relative, copied, settings)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload_id


def initiate_lora_training(
    conn,
    actor: Actor,
    settings: Any,
    request: dict[str, Any],
    *,
    entity_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    priority: int | None = None,
    image_count: int | None = None,
) -> tuple[uuid.UUID, uuid.UUID]:
    """Validate a training request, create its `lora_models` row (status training) unless it names the
    caller's existing LoRA (`lora_model_id`, or the job's entity as the seed writes it), and enqueue its
    `train_lora` job — in one transaction. Returns (lora_model_id, job_id); `InvalidJob` naming the field."""
    if not isinstance(request, dict):
        raise InvalidJob("metadata: must be a JSON object")
    request = dict(request)
    named = request.get("lora_model_id") or entity_id
    if named is not None and entity_id is not None and str(named) != str(entity_id):
        raise InvalidJob("lora_model_id: differs from the job's entity_id; give one of them")
    if actor.user_id is not None:
        request.setdefault("user_id", str(actor.user_id))
    fill_model_defaults(request, settings)
    with conn.transaction():
        if named is None:
            lora_id = uuid.uuid4()
            spec = parse(LoRATrainingSpec, request)  # every field, before anything is written
            if spec.user_id is not None:  # the LoRA is theirs (an admin or the CLI may name any user)
                check_reference(conn, actor, Reference("user_id", "user", READ, spec.user_id), settings)
            conn.execute(q("lora_training_create"), {
                "id": lora_id, "user_id": spec.user_id or actor.user_id, "name": spec.name, "description": spec.description,
                "model_file_url": f"loras/{lora_id}/{spec.file_stem}.safetensors",
                "trigger_words": list(spec.trigger_words), "training_images_count": image_count,
            })  # fmt: skip
        else:
            lora_id = _uuid(named)
            row = conn.execute(
                q("intake_lora"),
                {"id": lora_id, "name": None, "user_id": actor.user_id, "admin": actor.is_admin},
            ).fetchone()
            if row is not None and "name" not in request:
                request["name"] = row["name"]  # the seed's shape names the LoRA on its row only
        request["lora_model_id"] = str(lora_id)
        job_id = submit(
            conn,
            actor,
            JobRequest(
                TRAIN_LORA,
                request,
                priority=priority,
                entity_type=LORA_ENTITY,
                entity_id=lora_id,
                idempotency_key=idempotency_key,
            ),
            settings,
        )
        conn.execute(q("lora_training_job"), {"id": lora_id, "job_id": job_id})
    return lora_id, job_id


def fill_model_defaults(request: dict[str, Any], settings: Any) -> None:
    """The defaults that come from the base model, the same for the API and the CLI: the configured
    default model, and its image size as the training resolution unless the request gives one."""
    from enchant_worker.model_catalog import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    if not request.get("base_model"):
        request["base_model"] = registry.default
    nested: list[dict[str, Any]] = [
        request[k] for k in ("training_parameters", "parameters") if isinstance(request.get(k), dict)
    ]
    configured = registry.models.get(str(request["base_model"]))
    size = configured.defaults.get("width") if configured else None
    if size and "resolution" not in request and not any("resolution" in n for n in nested):
        request["resolution"] = size


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidJob(f"lora_model_id: must be a UUID, not {value!r}") from None
