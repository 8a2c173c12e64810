"""`train_lora`: train a LoRA style for a `lora_models` row (entity `lora_model`), resumably.

Metadata is the seed's LoRATrainingRequest (see `training.spec`) plus `lora_model_id`. Files live under
storage: `training/<id>/images` (copied and validated by the API or here), `training/<id>/work`
(checkpoints, latent cache: a re-leased job resumes from them), `loras/<id>/<name>.safetensors` and
`<name>.kohya.safetensors`. Cancellation and preemption checkpoint first (see `training.trainer`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from enchant_worker.errors import InvalidJob, JobCancelled, Preempted
from enchant_worker.sql import q
from enchant_worker.training.spec import LoRATrainingSpec, parse_training_request
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

JOB_KEYS = ("lora_model_id",)  # metadata keys that are about the job, not the training


def validate(metadata: dict[str, Any]) -> LoRATrainingSpec:
    return parse_training_request({k: v for k, v in metadata.items() if k not in JOB_KEYS})


def _lora_id(ctx: JobContext) -> uuid.UUID:
    raw = ctx.metadata.get("lora_model_id") or ctx.job.entity_id
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidJob(f"lora_model_id: must be the id of a lora_models row, got {raw!r}") from None


def _mark_failed(ctx: JobContext, lora_id: uuid.UUID) -> None:
    with ctx.connect() as conn, conn.transaction():
        conn.execute(q("lora_training_failed"), {"id": lora_id})


def run(ctx: JobContext) -> dict[str, Any]:
    from enchant_worker.training.base_model import resolve_base_model
    from enchant_worker.training.dataset import MANIFEST, load_dataset, prepare_dataset
    from enchant_worker.training.trainer import TrainingHooks, train_lora

    spec: LoRATrainingSpec = ctx.spec
    settings = ctx.settings
    lora_id = _lora_id(ctx)
    root = Path(settings.storage) / "training" / str(lora_id)
    out_dir = Path(settings.storage) / "loras" / str(lora_id)

    def on_progress(step: int, total: int, loss: float, s_per_step: float, eta_s: float) -> None:
        ctx.progress(
            100 * step / total,
            step=step,
            total=total,
            loss=round(loss, 5),
            s_per_step=round(s_per_step, 3),
            eta_s=round(eta_s),
        )

    try:
        # 1. The images: validated and copied once, reused when the job resumes
        data_dir = root / "dataset"
        dataset = (
            load_dataset(data_dir) if (data_dir / MANIFEST).is_file() else prepare_dataset(spec, data_dir)
        )
        # 2. Train (or resume) and export
        base = resolve_base_model(spec.base_model, settings.models_dir)
        device = None if settings.device == "auto" else settings.device
        hooks = TrainingHooks(
            on_progress=on_progress, should_stop=ctx.is_cancelled, should_yield=ctx.should_yield
        )
        result = train_lora(spec, dataset, base, root / "work", out_dir, hooks, device=device)
    except Preempted:
        raise  # back to pending; the row stays `training`
    except JobCancelled:
        # a worker shutting down or a lost lease also stops the run (after a checkpoint): the job goes
        # back to the queue and resumes; only a real cancellation ends the LoRA
        if getattr(ctx, "cancel_reason", None) not in ("shutdown", "lease_lost", "timeout"):
            _mark_failed(ctx, lora_id)
        raise
    except InvalidJob:
        _mark_failed(ctx, lora_id)
        raise
    except Exception:
        if ctx.job.attempts >= ctx.job.max_attempts:  # no retry left
            _mark_failed(ctx, lora_id)
        raise

    # 3. The row becomes ready, pointing at the diffusers file (relative to storage)
    relative = result.lora_path.relative_to(Path(settings.storage))
    with ctx.connect() as conn, conn.transaction():
        conn.execute(
            q("lora_training_ready"),
            {
                "id": lora_id,
                "model_file_url": str(relative),
                "training_images_count": result.image_count,
                "trigger_words": list(spec.trigger_words),
            },
        )
    return {**result.as_job_result(), "lora_model_id": str(lora_id), "model_file_url": str(relative)}


HANDLER = Handler(
    "train_lora", run, validate=validate, gpu=True, description="train a LoRA style (resumable)"
)
