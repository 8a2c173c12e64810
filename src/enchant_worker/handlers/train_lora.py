"""`train_lora`: train a LoRA style for a `lora_models` row (entity `lora_model`), resumably.

Metadata is the seed's LoRATrainingRequest (`jobspecs.train_lora`) plus `lora_model_id`; jobs are
started by `intake.training.initiate_lora_training`. Training images come from the user's uploads
(`uploads/<user>/<upload id>/`). Files live under storage: `training/<id>/dataset` (the validated copy
with captions and manifest, written on the job's first run),
`training/<id>/work` (checkpoints, latent cache: a re-leased job resumes from them), and
`loras/<id>/<name>.safetensors`, `<name>.kohya.safetensors`, `<name>.preview.png`. Cancellation and
preemption checkpoint first (see `training.trainer`).

Limits (image count and size) and the default checkpoint cadence come from `Settings`, one source for
the CLI, the API and the worker.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker.errors import InvalidJob, JobCancelled, Preempted
from enchant_worker.intake.training import TRAIN_LORA as TRAIN_LORA_JOB_TYPE
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec, parse_training_request
from enchant_worker.sql import q
from enchant_worker.storage import remote
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

log = logging.getLogger(__name__)

DATASET_DIR = "dataset"
WORK_DIR = "work"


def validate(metadata: dict[str, Any]) -> LoRATrainingSpec:
    """The job's training request; `InvalidJob` naming each bad field."""
    if not isinstance(metadata, dict):
        raise InvalidJob("metadata: must be a JSON object")
    return parse_training_request(metadata)


def training_folders(ctx: JobContext, spec: LoRATrainingSpec) -> LoRATrainingSpec:
    """The request with `training_images` resolved to the folders they name, checked for the job's user
    (uploads of theirs; ENCHANT_TRAINING_DIRS folders for admins and the CLI)."""
    from enchant_worker.intake.references import training_source_folder
    from enchant_worker.intake.submit import actor_for_job

    with ctx.connect() as conn:
        actor = actor_for_job(conn, ctx.job)
        folders = [
            training_source_folder(conn, actor, f"training_images[{i}]", value, ctx.settings, fetch=True)
            for i, value in enumerate(spec.training_images)
        ]
    return spec.model_copy(update={"training_images": [str(f) for f in folders]})


# -- shared with initiating ----------------------------------------------------------------------


def training_root(settings, lora_id: uuid.UUID) -> Path:
    return Path(settings.storage) / "training" / str(lora_id)


def lora_dir(settings, lora_id: uuid.UUID) -> Path:
    return Path(settings.storage) / "loras" / str(lora_id)


def dataset_limits(settings) -> dict[str, int]:
    """`prepare_dataset`'s limits from the settings."""
    return {
        "min_images": settings.min_training_images,
        "max_images": settings.max_training_images,
        "max_pixels": settings.max_training_image_pixels,
    }


def with_settings_defaults(spec: LoRATrainingSpec, settings) -> LoRATrainingSpec:
    """The request, with the settings' checkpoint cadence where the request names none."""
    if "checkpoint_every" in spec.model_fields_set:
        return spec
    return spec.model_copy(update={"checkpoint_every": settings.lora_checkpoint_every_steps})


def base_model_folder(name: str, settings, *, build: bool = True) -> Path:
    """The diffusers folder of base model `name`: one from configs/models.toml, a folder under the
    models folder, or a path. The built-in tiny model is built on first use (unless `build` is False)."""
    from enchant_worker.model_catalog import ModelRegistry
    from enchant_worker.training.base_model import resolve_base_model

    registry = ModelRegistry.load(settings.models_dir, settings.models_config)
    entry = registry.models.get(name)
    if entry is not None and entry.single_file:
        raise InvalidJob(
            f"base_model: {name!r} is a single-file checkpoint ({entry.path.name}); LoRA training needs "
            "a diffusers folder of the model"
        )
    if entry is not None and entry.builtin == "tiny":
        if not build:
            return entry.path
        from enchant_worker.generation.tiny_model import ensure_tiny_model

        ensure_tiny_model(entry.path)
    known = {n: s.path for n, s in registry.models.items() if not s.single_file}
    return resolve_base_model(name, settings.models_dir, known)


# -- the handler ---------------------------------------------------------------------------------


TRAINING_PCT = 95  # of the bar: the steps; the preview and saving take the rest
PREVIEW_DONE_PCT = 99


def _lora_id(ctx: JobContext) -> uuid.UUID:
    raw = ctx.metadata.get("lora_model_id") or ctx.job.entity_id
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidJob(f"lora_model_id: must be the id of a lora_models row, got {raw!r}") from None


def _mark_failed(ctx: JobContext, lora_id: uuid.UUID, reason: str) -> None:
    with ctx.connect() as conn, conn.transaction():
        conn.execute(
            q("lora_training_failed"), {"id": lora_id, "error_message": reason, "job_id": ctx.job.id}
        )


def run(ctx: JobContext[dict[str, Any]]) -> dict[str, Any]:
    from enchant_worker.training.dataset import MANIFEST, load_dataset, prepare_dataset
    from enchant_worker.training.trainer import TrainingHooks, train_lora

    settings = ctx.settings
    lora_id = _lora_id(ctx)
    root = training_root(settings, lora_id)

    trained: dict[str, Any] = {}  # the last training figures, kept on the later stages' reports

    def on_progress(step: int, total: int, loss: float, s_per_step: float, eta_s: float) -> None:
        trained.update(
            step=step, total=total, loss=round(loss, 5), s_per_step=round(s_per_step, 3), eta_s=round(eta_s)
        )
        ctx.progress(TRAINING_PCT * step / total, stage="training", **trained)

    def on_stage(stage: str) -> None:  # checkpointing, exporting: at the last step's percentage
        done = trained.get("step", 0) / trained["total"] if trained.get("total") else 0
        ctx.progress(TRAINING_PCT * done, stage=stage, **trained)

    try:
        # 1. The request (validated here, not by the worker, so that a bad one also fails the LoRA row)
        spec = with_settings_defaults(validate(ctx.metadata), settings)
        # 2. The images: validated and copied once, reused when the job resumes
        ctx.progress(0, stage="preparing data")
        data_dir = root / DATASET_DIR
        dataset = (
            load_dataset(data_dir)
            if (data_dir / MANIFEST).is_file()
            else prepare_dataset(training_folders(ctx, spec), data_dir, **dataset_limits(settings))
        )
        # 3. Train (or resume) and export
        base = base_model_folder(spec.base_model, settings)
        device = None if settings.device == "auto" else settings.device
        hooks = TrainingHooks(
            on_progress=on_progress,
            on_stage=on_stage,
            should_stop=ctx.is_cancelled,
            should_yield=ctx.should_yield,
        )
        # loads the model and encodes every image and caption once before the first step
        ctx.progress(0, stage="caching latents", images=len(dataset.images))
        result = train_lora(
            spec, dataset, base, root / WORK_DIR, lora_dir(settings, lora_id), hooks, device=device
        )
    except Preempted:
        raise  # back to pending; the row stays `training`
    except JobCancelled:
        # a worker shutting down or a lost lease also stops the run (after a checkpoint): the job goes
        # back to the queue and resumes; only a real cancellation ends the LoRA
        if ctx.cancel_reason not in ("shutdown", "lease_lost", "timeout"):
            _mark_failed(ctx, lora_id, "training was cancelled")
        raise
    except InvalidJob as exc:
        _mark_failed(ctx, lora_id, str(exc))
        raise
    except Exception as exc:
        if ctx.job.attempts >= ctx.job.max_attempts:  # no retry left
            _mark_failed(ctx, lora_id, f"{type(exc).__name__}: {exc}")
        raise

    # 4. A preview with the trigger words, through the generation path (a failure does not fail the LoRA)
    ctx.progress(TRAINING_PCT, stage="preview", **trained)
    preview = _preview(ctx, spec, base, result.lora_path)
    ctx.progress(PREVIEW_DONE_PCT, stage="saving", **trained)

    # 5. The row becomes ready, pointing at the diffusers file (relative to storage); the preview is linked
    storage = Path(settings.storage)
    relative = result.lora_path.relative_to(storage)
    if (objects := remote(settings)) is not None:  # uploaded (multipart when large) before the row says ready
        made = [result.lora_path, result.kohya_path] + ([] if isinstance(preview, dict) else [preview.path])
        for path in made:
            objects.put_file(path.relative_to(storage).as_posix(), path)
    out: dict[str, Any] = {  # paths relative to storage: results are shown to users
        **result.as_job_result(),
        "lora_file": str(relative),
        "kohya_file": str(result.kohya_path.relative_to(storage)),
        "lora_model_id": str(lora_id),
        "model_file_url": str(relative),
    }
    with ctx.connect() as conn, conn.transaction():
        conn.execute(q("lora_training_ready"), {
            "id": lora_id, "model_file_url": str(relative), "training_images_count": result.image_count,
            "trigger_words": list(spec.trigger_words), "job_id": ctx.job.id,
        })  # fmt: skip
        if isinstance(preview, dict):
            out["preview_error"] = preview["error"]
        else:
            out["preview_image"] = str(preview.path.relative_to(storage))
            out["preview_image_id"] = str(_insert_preview(conn, ctx, lora_id, preview, storage))
    return out


def _preview(ctx: JobContext, spec: LoRATrainingSpec, base: Path, lora_file: Path):
    """The Preview, or {"error": why} when it could not be made (the LoRA is ready either way)."""
    from enchant_worker.handlers.lora_preview import make_preview

    try:
        return make_preview(ctx.settings, spec, base, lora_file, is_cancelled=ctx.is_cancelled)
    except Exception as exc:
        ctx.log.warning("LoRA %s: no preview image: %s", spec.name, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _insert_preview(conn, ctx: JobContext, lora_id: uuid.UUID, preview, storage: Path) -> uuid.UUID:
    from enchant_worker.handlers.image_quality import analyse_stored, clip_scorer

    timings = dict(preview.timings_s)
    scorer, skipped = clip_scorer(ctx.settings, preview.model)
    quality = analyse_stored(preview.path, preview.prompt, scorer, skipped, timings)
    row = conn.execute(q("lora_preview_image"), {
        "user_id": ctx.job.user_id, "job_id": ctx.job.id, "job_created_at": ctx.job.created_at,
        "model_name": preview.model, "prompt": preview.prompt, "seed": preview.seed,
        "parameters": Jsonb({**preview.parameters, "lora_model_id": str(lora_id)}),
        "file_path": str(preview.path.relative_to(storage)), "content_hash": preview.content_hash,
        "width": preview.width, "height": preview.height, "timings": Jsonb(timings),
        "quality": Jsonb(quality), "quality_score": quality.get("score"),
    }).fetchone()  # fmt: skip
    return row["id"]


# No `validate=` here: `run` validates, so that an invalid request also marks its lora_models row failed.
HANDLER = Handler(TRAIN_LORA_JOB_TYPE, run, gpu=True, description="train a LoRA style (resumable)")
