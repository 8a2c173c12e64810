"""LoRA training of a Stable Diffusion base model with accelerate + peft.

`train_lora()` reads as numbered steps; each helper below does one of them. The recipe is the diffusers
LoRA example's (peft LoRA on the UNet attention projections, AdamW, MSE on the scheduler's target),
plus: latents' distributions and text embeddings computed once per run and cached (on disk too, so a
resumed run skips the VAE), aspect-ratio buckets, min-SNR weighting, noise offset, crash-safe
checkpoints, and hooks for progress, cancellation and preemption.

Hooks are checked after every optimizer step. Cancellation and preemption write a checkpoint first,
then raise `JobCancelled` / `Preempted`. A non-finite loss raises `TrainingDiverged` without writing
anything, so the last good checkpoint stays the one a retry resumes from.
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from enchant_worker.errors import InvalidJob, JobCancelled, Preempted
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec
from enchant_worker.training import checkpoints as ckpt
from enchant_worker.training.base_model import BaseModel, load_base_model
from enchant_worker.training.buckets import bucket_for, epoch_batches, make_buckets
from enchant_worker.training.dataset import PreparedDataset
from enchant_worker.training.errors import CheckpointMismatch, TrainingDiverged
from enchant_worker.training.export import export_lora

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
LOSS_EMA_BETA = 0.9  # smoothing of the reported loss
SPEED_EMA_BETA = 0.8  # smoothing of the reported seconds per step
ADAM_WEIGHT_DECAY = 1e-2
CACHE_DIR = "cache"
ADAPTER = "default"
CHECKPOINT_DIR = "checkpoints"


def _never() -> bool:
    return False


@dataclass
class TrainingHooks:
    """How the caller watches and steers a run. All are called between optimizer steps."""

    on_progress: Callable[[int, int, float, float, float], None] | None = (
        None  # step, total, loss, s/step, eta s
    )
    should_stop: Callable[[], bool] = _never  # cancellation: checkpoint, then JobCancelled
    should_yield: Callable[[], bool] = _never  # preemption: checkpoint, then Preempted
    on_stage: Callable[[str], None] | None = None  # "checkpointing", "exporting": steps without a step count


@dataclass
class TrainingResult:
    lora_path: Path
    kohya_path: Path
    steps: int
    resumed_from_step: int
    final_loss: float
    image_count: int
    flagged_images: list[dict[str, Any]]
    content_hash: str  # of the diffusers file's tensor data
    metadata: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def as_job_result(self) -> dict[str, Any]:
        return {
            "lora_file": str(self.lora_path),
            "kohya_file": str(self.kohya_path),
            "steps": self.steps,
            "resumed_from_step": self.resumed_from_step,
            "final_loss": self.final_loss,
            "training_images_count": self.image_count,
            "flagged_images": self.flagged_images,
            "content_hash": self.content_hash,
        }


@dataclass
class _Run:
    """Everything the loop touches, so that helpers take one argument."""

    spec: LoRATrainingSpec
    accelerator: Any
    weight_dtype: torch.dtype
    base: BaseModel
    trainable: dict[str, torch.nn.Parameter]
    optimizer: Any
    lr_scheduler: Any
    generator: torch.Generator
    cache: dict[str, Any]
    buckets_of: list[tuple[int, int]]
    steps_per_epoch: int
    total_steps: int
    checkpoint_root: Path
    info: dict[str, Any]
    step: int = 0
    loss_ema: float | None = None
    epoch_order: list[list[int]] = field(default_factory=list)
    last_saved_step: int = -1


def train_lora(
    spec: LoRATrainingSpec,
    dataset: PreparedDataset,
    base_model: BaseModel | Path | str,
    work_dir: Path,
    output_dir: Path,
    hooks: TrainingHooks | None = None,
    device: str | torch.device | None = None,
) -> TrainingResult:
    """Train (or resume training) a LoRA, then export it to `output_dir`.

    `work_dir` holds this job's checkpoints and cache: give the same folder to resume. A `BaseModel`
    passed in is modified (adapters are added); a path is loaded from disk.
    """
    hooks = hooks or TrainingHooks()
    work_dir = Path(work_dir)
    started = time.perf_counter()
    try:
        # 1. Device and precision
        accelerator, weight_dtype = make_accelerator(spec.mixed_precision, device)

        # 2. Base model, frozen
        base = base_model if isinstance(base_model, BaseModel) else load_base_model(Path(base_model))
        freeze_base(base, accelerator.device, weight_dtype, spec)

        # 3. LoRA adapters on the attention projections; trainable weights stay fp32
        trainable = add_lora_adapters(base, spec)

        # 4. Buckets and the number of steps
        step = base.pixel_step
        buckets = make_buckets(spec.resolution, step)
        buckets_of = [bucket_for(im.width, im.height, buckets, step) for im in dataset.images]
        steps_per_epoch = len(epoch_batches(buckets_of, spec.batch_size, spec.seed, 0))
        total_steps = spec.max_train_steps or spec.epochs * steps_per_epoch

        # 5. Latents' distributions and text embeddings, computed once (or read back from disk)
        t_cache = time.perf_counter()
        cache = build_cache(
            base, dataset, buckets_of, spec, accelerator.device, weight_dtype, work_dir / CACHE_DIR
        )
        cache_s = time.perf_counter() - t_cache

        # 6. Optimizer and LR schedule, prepared by accelerate (autocast, grad scaling)
        optimizer, lr_scheduler = make_optimizer(trainable, spec, total_steps, accelerator.device)
        models = [base.unet] + ([base.text_encoder] if spec.train_text_encoder else [])
        *_, optimizer, lr_scheduler = accelerator.prepare(*models, optimizer, lr_scheduler)

        generator = torch.Generator(device=accelerator.device).manual_seed(spec.seed)
        run = _Run(
            spec=spec,
            accelerator=accelerator,
            weight_dtype=weight_dtype,
            base=base,
            trainable=trainable,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            generator=generator,
            cache=cache,
            buckets_of=buckets_of,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            checkpoint_root=work_dir / CHECKPOINT_DIR,
            info={
                "fingerprint": spec.fingerprint(),
                "dataset": dataset.content_hash,
                "total_steps": total_steps,
            },
        )

        # 7. Resume from the last good checkpoint
        resumed_from = resume(run)

        # 8. Train, checking the hooks after every step
        t_loop = time.perf_counter()
        run_loop(run, hooks)
        loop_s = time.perf_counter() - t_loop

        # 9. Export both formats with the training facts in their headers
        if hooks.on_stage is not None:
            hooks.on_stage("exporting")
        files = export(run, dataset, output_dir)
        timings = {
            "total_s": time.perf_counter() - started,
            "cache_s": cache_s,
            "loop_s": loop_s,
            "steps_run": run.step - resumed_from,
        }
        return TrainingResult(
            lora_path=Path(files["diffusers_path"]),
            kohya_path=Path(files["kohya_path"]),
            steps=run.step,
            resumed_from_step=resumed_from,
            final_loss=float(run.loss_ema or 0.0),
            image_count=len(dataset.images),
            flagged_images=dataset.flagged,
            content_hash=files["diffusers_hash"],
            metadata=files["facts"],
            timings=timings,
        )
    finally:
        release_memory()


# 1. ------------------------------------------------------------------------------------------------


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    """'auto' → bf16 on GPUs that support it, else fp16 on GPUs, else none on the CPU."""
    cuda = device.type == "cuda"
    if requested == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    if requested == "fp16" and not cuda:
        raise InvalidJob(
            "mixed_precision: 'fp16' needs a CUDA GPU; use 'auto', 'no' or 'bf16' on this worker"
        )
    if requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise InvalidJob("mixed_precision: this GPU has no bf16 support; use 'auto', 'fp16' or 'no'")
    return requested


def make_accelerator(mixed_precision: str, device: str | torch.device | None):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    target = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    precision = resolve_mixed_precision(mixed_precision, target)
    # One job at a time per process: a new job may need another precision than the last one.
    AcceleratorState._reset_state(True)
    accelerator = Accelerator(mixed_precision=precision, cpu=target.type == "cpu")
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    return accelerator, weight_dtype


# 2. ------------------------------------------------------------------------------------------------


def freeze_base(
    base: BaseModel, device: torch.device, weight_dtype: torch.dtype, spec: LoRATrainingSpec
) -> None:
    """No gradients for the base weights; UNet and text encoder in the compute dtype on the device.

    The VAE stays in fp32: it only encodes the training images once, for the cache.
    """
    for module in (base.unet, base.vae, base.text_encoder):
        module.requires_grad_(False)
    for module, dtype in (
        (base.unet, weight_dtype),
        (base.text_encoder, weight_dtype),
        (base.vae, torch.float32),
    ):
        module.to(device) if module.dtype == dtype else module.to(device, dtype=dtype)
    base.unet.train()
    if spec.gradient_checkpointing:
        base.unet.enable_gradient_checkpointing()
        if spec.train_text_encoder:
            base.text_encoder.gradient_checkpointing_enable()


# 3. ------------------------------------------------------------------------------------------------


def add_lora_adapters(base: BaseModel, spec: LoRATrainingSpec) -> dict[str, torch.nn.Parameter]:
    """Add the adapters (same seed → same initial weights) and return the trainable parameters by name.

    peft injects the layers directly (rather than transformers' `add_adapter`, which needs a newer peft).
    """
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(spec.seed)
    config: dict[str, Any] = {"r": spec.rank, "lora_alpha": spec.lora_alpha, "init_lora_weights": "gaussian"}
    modules = {"unet": base.unet}
    base.unet.add_adapter(LoraConfig(target_modules=UNET_TARGETS, **config))
    if spec.train_text_encoder:
        te_config = LoraConfig(target_modules=TEXT_ENCODER_TARGETS, **config)
        inject_adapter_in_model(te_config, base.text_encoder, adapter_name=ADAPTER)
        base.text_encoder.peft_config = {ADAPTER: te_config}
        base.text_encoder.train()
        modules["text_encoder"] = base.text_encoder
    cast_training_params(list(modules.values()), dtype=torch.float32)
    return {
        f"{prefix}.{name}": p
        for prefix, module in modules.items()
        for name, p in module.named_parameters()
        if p.requires_grad
    }


def lora_state_dict(trainable: dict[str, torch.nn.Parameter], component: str) -> dict[str, torch.Tensor]:
    """One component's LoRA weights in peft's file keys: `<module>.lora_A.weight` (no adapter name).

    Text-encoder modules get the canonical `text_model.` prefix that transformers 5 no longer has in
    memory but that LoRA files (kohya, AUTOMATIC1111, ComfyUI, diffusers) use.
    """
    prefix = f"{component}."
    out = {}
    for name, p in trainable.items():
        if name.startswith(prefix):
            key = name[len(prefix) :].replace(f".{ADAPTER}.", ".")
            if component == "text_encoder" and not key.startswith("text_model."):
                key = f"text_model.{key}"
            out[key] = p.detach()
    return out


# 5. ------------------------------------------------------------------------------------------------


def load_pixels(path: Path, bucket: tuple[int, int]) -> torch.Tensor:
    """An image as a [-1, 1] tensor of the bucket's size: scaled down to cover it, then centre-cropped."""
    from PIL import Image, ImageOps

    width, height = bucket
    with Image.open(path) as opened:
        im: Image.Image = ImageOps.exif_transpose(opened)
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            canvas = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(canvas, im)
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS) if size != im.size else im
        left, top = (im.width - width) // 2, (im.height - height) // 2
        im = im.crop((left, top, left + width, top + height))
        data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(height, width, 3)
    return data.permute(2, 0, 1).float().div(127.5).sub(1.0)


def tokenize(tokenizer: Any, captions: list[str]) -> torch.Tensor:
    return tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def _cache_key(
    base: BaseModel, dataset: PreparedDataset, buckets_of: list, dtype: torch.dtype, te: bool
) -> str:
    parts = [base.name, dataset.content_hash, repr(buckets_of), str(dtype), str(te)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


@torch.no_grad()
def build_cache(
    base: BaseModel,
    dataset: PreparedDataset,
    buckets_of: list[tuple[int, int]],
    spec: LoRATrainingSpec,
    device: torch.device,
    weight_dtype: torch.dtype,
    cache_dir: Path,
) -> dict[str, Any]:
    """Per image: the VAE latent distribution (mean, std) and the caption's token ids and embeddings.

    Sampling from the stored distribution at each step is what encoding at each step would give.
    Embeddings are cached only while the text encoder is frozen. The VAE leaves the GPU afterwards.
    """
    key = _cache_key(base, dataset, buckets_of, weight_dtype, spec.train_text_encoder)
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        cache = torch.load(path, map_location="cpu", weights_only=True)
    else:
        cache = {
            "mean": [],
            "std": [],
            "input_ids": tokenize(base.tokenizer, [im.caption for im in dataset.images]),
        }
        for image, bucket in zip(dataset.images, buckets_of, strict=True):
            pixels = load_pixels(dataset.path(image), bucket).unsqueeze(0).to(device)
            dist = base.vae.encode(pixels).latent_dist
            cache["mean"].append(dist.mean[0].cpu())
            cache["std"].append(dist.std[0].cpu())
        if not spec.train_text_encoder:
            ids = cache["input_ids"].to(device)
            cache["embeds"] = torch.cat(
                [base.text_encoder(ids[i : i + 8])[0].cpu() for i in range(0, len(ids), 8)]
            )
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(cache, tmp)
        tmp.replace(path)
    base.vae.to("cpu")
    if not spec.train_text_encoder:
        base.text_encoder.to("cpu")
    return {
        "mean": [m.to(device) for m in cache["mean"]],
        "std": [s.to(device) for s in cache["std"]],
        "input_ids": cache["input_ids"].to(device),
        "embeds": cache["embeds"].to(device, weight_dtype) if "embeds" in cache else None,
        "scaling_factor": float(base.vae.config.scaling_factor),
    }


# 6. ------------------------------------------------------------------------------------------------


def make_optimizer(
    trainable: dict[str, torch.nn.Parameter], spec: LoRATrainingSpec, total_steps: int, device
):
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(
        list(trainable.values()),
        lr=spec.learning_rate,
        weight_decay=ADAM_WEIGHT_DECAY,
        fused=device.type == "cuda",
    )
    lr_scheduler = get_scheduler(
        spec.lr_scheduler, optimizer, num_warmup_steps=spec.lr_warmup_steps, num_training_steps=total_steps
    )
    return optimizer, lr_scheduler


# 7. ------------------------------------------------------------------------------------------------


def resume(run: _Run) -> int:
    """Load the newest complete checkpoint of this run, if any; return the step it reached."""
    saved = ckpt.load_latest_checkpoint(run.checkpoint_root)
    if saved is None:
        return 0
    if (
        saved.info.get("fingerprint") != run.info["fingerprint"]
        or saved.info.get("dataset") != run.info["dataset"]
    ):
        raise CheckpointMismatch(
            f"The checkpoint in {run.checkpoint_root} was made for other training settings or images; "
            "delete that folder to start over, or resubmit the original request"
        )
    with torch.no_grad():
        for name, tensor in saved.weights.items():
            run.trainable[name].copy_(tensor)
    run.optimizer.load_state_dict(saved.state["optimizer"])
    run.lr_scheduler.load_state_dict(saved.state["lr_scheduler"])
    if run.accelerator.scaler is not None and saved.state.get("scaler"):
        run.accelerator.scaler.load_state_dict(saved.state["scaler"])
    ckpt.restore_rng(saved.state["rng"], run.generator)
    run.step = saved.step
    run.loss_ema = saved.state.get("loss_ema")
    run.epoch_order = saved.state.get("epoch_order") or []
    run.last_saved_step = saved.step
    return saved.step


def save(run: _Run) -> None:
    if run.last_saved_step == run.step:
        return
    state = {
        "optimizer": run.optimizer.state_dict(),
        "lr_scheduler": run.lr_scheduler.state_dict(),
        "scaler": run.accelerator.scaler.state_dict() if run.accelerator.scaler is not None else None,
        "rng": ckpt.capture_rng(run.generator),
        "loss_ema": run.loss_ema,
        "epoch": run.step // run.steps_per_epoch,
        "epoch_order": run.epoch_order,
    }
    ckpt.save_checkpoint(run.checkpoint_root, ckpt.Checkpoint(run.step, dict(run.trainable), state, run.info))
    run.last_saved_step = run.step


# 8. ------------------------------------------------------------------------------------------------


def run_loop(run: _Run, hooks: TrainingHooks) -> None:
    s_per_step = 0.0
    last = time.perf_counter()
    while run.step < run.total_steps:
        loss = training_step(run, next_batch(run))
        run.step += 1
        run.loss_ema = (
            loss if run.loss_ema is None else LOSS_EMA_BETA * run.loss_ema + (1 - LOSS_EMA_BETA) * loss
        )
        now = time.perf_counter()
        s_per_step = (
            now - last
            if s_per_step == 0.0
            else SPEED_EMA_BETA * s_per_step + (1 - SPEED_EMA_BETA) * (now - last)
        )
        last = now
        if hooks.on_progress is not None:
            eta = s_per_step * (run.total_steps - run.step)
            hooks.on_progress(run.step, run.total_steps, run.loss_ema, s_per_step, eta)
        if run.step % run.spec.checkpoint_every == 0 and run.step < run.total_steps:
            if hooks.on_stage is not None:
                hooks.on_stage("checkpointing")
            save(run)
        if run.step < run.total_steps and hooks.should_stop():
            save(run)
            raise JobCancelled(
                f"Training cancelled at step {run.step}/{run.total_steps}; a checkpoint was kept"
            )
        if run.step < run.total_steps and hooks.should_yield():
            save(run)
            raise Preempted(f"Training paused at step {run.step}/{run.total_steps} for more urgent work")


def next_batch(run: _Run) -> list[int]:
    """The image indices of the next step; an epoch's order is fixed by (seed, epoch) and checkpointed."""
    epoch, position = divmod(run.step, run.steps_per_epoch)
    if position == 0 or not run.epoch_order:
        run.epoch_order = epoch_batches(run.buckets_of, run.spec.batch_size, run.spec.seed, epoch)
    return run.epoch_order[position]


def batch_inputs(run: _Run, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents sampled from the cached distributions, and the captions' embeddings."""
    cache, g = run.cache, run.generator
    mean = torch.stack([cache["mean"][i] for i in batch])
    std = torch.stack([cache["std"][i] for i in batch])
    sample = torch.randn(mean.shape, generator=g, device=mean.device, dtype=mean.dtype)
    latents = ((mean + std * sample) * cache["scaling_factor"]).to(run.weight_dtype)
    if cache["embeds"] is not None:
        embeds = cache["embeds"][batch]
    else:
        embeds = run.base.text_encoder(cache["input_ids"][batch])[0]
    return latents, embeds


def training_step(run: _Run, batch: list[int]) -> float:
    """One optimizer step on `batch`; returns its loss (raises TrainingDiverged if it is not finite)."""
    spec, g, scheduler = run.spec, run.generator, run.base.noise_scheduler
    latents, embeds = batch_inputs(run, batch)
    noise = torch.randn(latents.shape, generator=g, device=latents.device, dtype=torch.float32)
    if spec.noise_offset:
        noise += spec.noise_offset * torch.randn(
            (latents.shape[0], latents.shape[1], 1, 1), generator=g, device=latents.device
        )
    noise = noise.to(latents.dtype)
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=g, device=latents.device
    )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    target = (
        noise if run.base.prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, timesteps)
    )
    with run.accelerator.autocast():
        prediction = run.base.unet(noisy, timesteps, embeds, return_dict=False)[0]
    loss = diffusion_loss(prediction, target, timesteps, scheduler, spec.snr_gamma, run.base.prediction_type)
    run.accelerator.backward(loss)
    if run.accelerator.sync_gradients:
        run.accelerator.clip_grad_norm_(list(run.trainable.values()), spec.max_grad_norm)
    run.optimizer.step()
    run.lr_scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    value = loss.item()
    if not math.isfinite(value):
        last = ckpt.list_checkpoints(run.checkpoint_root)
        kept = f"the checkpoint at step {last[-1].name}" if last else "no checkpoint"
        raise TrainingDiverged(
            f"The training loss became {value} at step {run.step + 1}; lower learning_rate "
            f"(now {spec.learning_rate}) and train again ({kept} was kept)"
        )
    return value


def diffusion_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler: Any,
    snr_gamma: float | None,
    prediction_type: str,
) -> torch.Tensor:
    """MSE on the scheduler's target, optionally weighted by min-SNR-γ (Hang et al., 2023)."""
    if snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    weights = torch.stack([snr, snr_gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0]
    weights = weights / (snr + 1) if prediction_type == "v_prediction" else weights / snr
    loss = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (loss * weights).mean()


# 9. ------------------------------------------------------------------------------------------------


def export(run: _Run, dataset: PreparedDataset, output_dir: Path) -> dict[str, Any]:
    spec = run.spec
    components = {"unet": run.base.unet}
    if spec.train_text_encoder:
        components["text_encoder"] = run.base.text_encoder
    loras = {name: lora_state_dict(run.trainable, name) for name in components}
    facts = {
        "name": spec.name,
        "trigger_words": spec.trigger_words,
        "base_model": spec.base_model,
        "rank": spec.rank,
        "alpha": spec.lora_alpha,
        "steps": run.step,
        "resolution": spec.resolution,
        "image_count": len(dataset.images),
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "seed": spec.seed,
        "prediction_type": run.base.prediction_type,
        "dataset_hash": dataset.content_hash,
    }
    # the family the generation side checks a LoRA against (SD 2.x has 1024-wide text embeddings)
    family = "sd2" if run.base.unet.config.cross_attention_dim == 1024 else "sd15"
    files = export_lora(output_dir, spec.file_stem, loras, {**facts, "enchant.family": family})
    return {**files, "facts": facts}


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
