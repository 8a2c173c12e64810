"""The generation routine: one batched call for `count` images (or for several jobs' images), with
progress, cancellation within a step, out-of-memory fallback and a guard against broken images.

    outcome = generate(resident, params, on_progress=..., is_cancelled=...)
    outcomes = generate_batch(resident, [params_a, params_b], on_progress=..., is_cancelled=[...])
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from enchant_worker.generation.adapters import ActivationReport
from enchant_worker.generation.batch_invariance import batch_invariant
from enchant_worker.generation.device import free_memory
from enchant_worker.generation.errors import (
    BrokenImage,
    GenerationCancelled,
    InvalidGeneration,
    OutOfMemory,
)
from enchant_worker.generation.params import GenerationParams
from enchant_worker.generation.pipelines import ResidentPipeline
from enchant_worker.generation.samplers import make_scheduler

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (steps done, steps in all)
CancelledFn = Callable[[], bool]

BLACK_MAX_VALUE = 2 / 255  # an image whose brightest pixel is below this is black: broken


@dataclass
class GenerationOutcome:
    images: list  # PIL images, in seed order
    seeds: tuple[int, ...]
    timings_s: dict[str, float]
    adapters: ActivationReport
    warnings: list[str] = field(default_factory=list)
    batch_size: int = 1  # the batch size that fitted in memory


def generate(
    resident: ResidentPipeline,
    params: GenerationParams,
    on_progress: ProgressFn | None = None,
    is_cancelled: CancelledFn | None = None,
) -> GenerationOutcome:
    """Generate one image per seed of `params`; raises GenerationCancelled, OutOfMemory, BrokenImage."""
    (outcome,) = generate_batch(resident, [params], on_progress, [is_cancelled or _never])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def generate_batch(
    resident: ResidentPipeline,
    members: Sequence[GenerationParams],
    on_progress: ProgressFn | None = None,
    is_cancelled: Sequence[CancelledFn] | None = None,
) -> list[GenerationOutcome | Exception]:
    """Generate the images of several requests (jobs) in one batched pipeline call: each image with its
    member's prompt and its own generator, so it is the image the member alone would get. Members must
    be `batchable` (the same settings but seeds, the same LoRA set).

    One answer per member: its outcome, or the error that is its alone (GenerationCancelled: its images
    are dropped; BrokenImage). A cancelled member does not stop the others; the call stops when every
    member is cancelled (GenerationCancelled is raised). OutOfMemory at batch size 1 and InvalidGeneration
    of the shared settings are raised for all."""
    if not members:
        return []
    if not batchable(members):
        raise ValueError("generate_batch: members differ in settings or LoRAs; run them apart")
    pipe: Any = resident.pipe  # a diffusers pipeline; the resident's type names no diffusers class
    settings = members[0].settings
    cancelled = list(is_cancelled) if is_cancelled is not None else [_never] * len(members)
    timings: dict[str, float] = {}

    # 1. Check inputs the parameters alone could not (they depend on the model)
    warnings = [_check_against_model(pipe, params) for params in members]
    if all(check() for check in cancelled):
        raise GenerationCancelled()

    # 2. Activate the LoRA set (loads only what is not resident)
    adapters = resident.adapters.activate(members[0].loras)
    timings["adapters_s"] = adapters.load_s + adapters.switch_s

    # 3. Pick the sampler, with the model's noise schedule (kept between jobs that use the same one)
    _use_sampler(resident, settings.sampler)

    # 4. Denoise every member's images together, halving the batch when memory runs out
    items = [
        _Item(m, params.prompt, params.negative_prompt, seed)
        for m, params in enumerate(members)
        for seed in params.settings.seeds
    ]
    started = time.perf_counter()
    latents, batch_size = _denoise_all(pipe, settings, items, on_progress, cancelled)
    timings["denoise_s"] = time.perf_counter() - started

    # 5. Drop the images of members cancelled meanwhile; refuse NaN latents before spending a decode
    answers: list[GenerationOutcome | Exception | None] = [
        GenerationCancelled() if check() else None for check in cancelled
    ]
    for m, params in enumerate(members):
        if answers[m] is None and params.nan_guard:
            answers[m] = _guard(_guard_latents, latents[_rows(items, m)], params.settings.seeds)
    keep = [i for i, item in enumerate(items) if answers[item.member] is None]
    items, latents = [items[i] for i in keep], latents[keep]

    # 6. Decode with the VAE
    started = time.perf_counter()
    pixels = _decode(pipe, latents) if keep else latents
    timings["decode_s"] = time.perf_counter() - started

    # 7. Refuse broken images; convert the rest, member by member
    for m, params in enumerate(members):
        if answers[m] is not None:
            continue
        mine = pixels[_rows(items, m)]
        if params.nan_guard and (broken := _guard(_guard_images, mine, params.settings.seeds)):
            answers[m] = broken
            continue
        images = pipe.image_processor.numpy_to_pil(pipe.image_processor.pt_to_numpy(mine.cpu()))
        answers[m] = GenerationOutcome(
            images, params.settings.seeds, dict(timings), adapters, warnings[m], batch_size
        )
    return answers  # type: ignore[return-value]  # every member has its answer by now


def batchable(members: Sequence[GenerationParams]) -> bool:
    """Can these requests share one pipeline call? The same size, steps, guidance, sampler and LoRA set
    (prompts, negative prompts and seeds may differ)."""

    def key(params: GenerationParams) -> tuple:
        s = params.settings
        return s.width, s.height, s.steps, s.cfg_scale, s.sampler, params.loras

    return len({key(params) for params in members}) <= 1


@dataclass(frozen=True)
class _Item:
    """One image of a batch: whose it is, its prompts and its seed."""

    member: int
    prompt: str
    negative_prompt: str
    seed: int


def _never() -> bool:
    return False


def _rows(items: Sequence[_Item], member: int) -> list[int]:
    return [i for i, item in enumerate(items) if item.member == member]


def _guard(
    check: Callable[[torch.Tensor, Sequence[int]], None], values: torch.Tensor, seeds: Sequence[int]
) -> BrokenImage | None:
    try:
        check(values, seeds)
    except BrokenImage as exc:
        return exc
    return None


def _use_sampler(resident: ResidentPipeline, sampler: str) -> None:
    """Set the pipeline's scheduler for `sampler`. Building one (from_config, a few ms) is skipped when
    the previous job left the same sampler in place: set_timesteps() resets a scheduler's state at the
    start of every call, as diffusers does when a pipeline is called again."""
    pipe: Any = resident.pipe
    current = getattr(resident, "sampler_in_use", None)
    if current is not None and current[0] == sampler and pipe.scheduler is current[1]:
        return
    pipe.scheduler = make_scheduler(_base_scheduler_config(resident), sampler)
    resident.sampler_in_use = (sampler, pipe.scheduler)  # type: ignore[attr-defined]


def _base_scheduler_config(resident: ResidentPipeline) -> dict:
    # Remember the model's own scheduler config once: later jobs replace pipe.scheduler.
    if not hasattr(resident, "base_scheduler_config"):
        resident.base_scheduler_config = dict(resident.pipe.scheduler.config)  # type: ignore[attr-defined]
    return resident.base_scheduler_config  # type: ignore[attr-defined]


def _check_against_model(pipe, params: GenerationParams) -> list[str]:
    warnings = []
    factor = pipe.vae_scale_factor
    for name, value in (("width", params.settings.width), ("height", params.settings.height)):
        if value % factor:
            raise InvalidGeneration(f"{name}: must be a multiple of {factor} for this model, not {value}")
    for name, text in (("prompt", params.prompt), ("negative_prompt", params.negative_prompt)):
        warning = truncation_warning(pipe.tokenizer, name, text)
        if warning:
            warnings.append(warning)
    return warnings


def truncation_warning(tokenizer, field_name: str, text: str) -> str | None:
    """A warning when `text` is longer than the text encoder takes (it is then truncated)."""
    if not text:
        return None
    limit = tokenizer.model_max_length - 2  # less the start and end tokens
    ids = tokenizer(text, truncation=False, add_special_tokens=False).input_ids
    if len(ids) <= limit:
        return None
    dropped = tokenizer.decode(ids[limit:]).strip()
    return f"{field_name}: {len(ids)} tokens, the text encoder takes {limit}; truncated, dropping '{dropped}'"


def _denoise_all(pipe, settings, items: Sequence[_Item], on_progress, cancelled) -> tuple[torch.Tensor, int]:
    batch_size = len(items)
    while True:
        try:
            chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
            done = [
                _denoise(pipe, settings, chunk, index, len(chunks), on_progress, cancelled)
                for index, chunk in enumerate(chunks)
            ]
            return torch.cat(done), batch_size
        except torch.OutOfMemoryError:
            free_memory()
            if batch_size == 1:
                raise OutOfMemory(
                    f"out of GPU memory at batch size 1, {settings.width}x{settings.height}; lower the size"
                ) from None
            batch_size = max(1, batch_size // 2)
            log.warning("out of GPU memory; retrying with batch size %d", batch_size)
        except GenerationCancelled:
            free_memory()
            raise


def _denoise(
    pipe, settings, items: Sequence[_Item], chunk: int, chunks: int, on_progress, cancelled
) -> torch.Tensor:
    """Latents for `items` in one call; the step callback reports progress and raises once every
    member is cancelled (one cancelled member's images are dropped after the call)."""
    s = settings
    total = s.steps * chunks

    def on_step_end(_pipe, step: int, _timestep, callback_kwargs: dict) -> dict:
        if on_progress is not None:
            on_progress(chunk * s.steps + step + 1, total)
        if all(check() for check in cancelled):
            raise GenerationCancelled()  # leaves the denoising loop: no more steps, no decode
        return callback_kwargs

    # One CPU generator per image: the seed alone fixes the starting noise, on every device, and an
    # image's noise does not depend on what else is in the batch.
    generators = [torch.Generator("cpu").manual_seed(item.seed) for item in items]
    negative = [item.negative_prompt for item in items]
    # On the CPU an image is the same batched or alone; GPUs pick their kernels by shape (no claim there)
    invariant = batch_invariant() if pipe.device.type == "cpu" else contextlib.nullcontext()
    with torch.inference_mode(), invariant:
        result = pipe(
            prompt=[item.prompt for item in items],
            negative_prompt=negative if any(negative) else None,
            width=s.width,
            height=s.height,
            num_inference_steps=s.steps,
            guidance_scale=s.cfg_scale,
            generator=generators,
            output_type="latent",
            callback_on_step_end=on_step_end,
        )
    return result.images


def _decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1], (N, 3, H, W). On the CPU one image at a time, so that an image has the same
    pixels batched or alone (its kernels sum by the batch size; see batch_invariance); elsewhere in one
    call, and one image at a time if the batch does not fit in memory."""
    vae = pipe.vae
    upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:  # SDXL's VAE overflows in fp16
        vae.to(torch.float32)
    latents = latents.to(vae.dtype) / vae.config.scaling_factor
    one_by_one = latents.device.type == "cpu"
    try:
        with torch.inference_mode():
            if not one_by_one:
                try:
                    decoded = vae.decode(latents, return_dict=False)[0]
                except torch.OutOfMemoryError:
                    free_memory()
                    one_by_one = True
            if one_by_one:
                decoded = torch.cat([vae.decode(x[None], return_dict=False)[0] for x in latents])
    finally:
        if upcast:
            vae.to(torch.float16)
    return (decoded.float() / 2 + 0.5).clamp(0, 1)


def _guard_latents(latents: torch.Tensor, seeds: Sequence[int]) -> None:
    finite = torch.isfinite(latents.flatten(1)).all(dim=1)
    bad = [seed for seed, ok in zip(seeds, finite.tolist(), strict=True) if not ok]
    if bad:
        raise BrokenImage(f"the latents of seeds {bad} hold NaN or infinity; try dtype bfloat16 or float32")


def _guard_images(pixels: torch.Tensor, seeds: Sequence[int]) -> None:
    flat = pixels.flatten(1)
    for seed, image in zip(seeds, flat, strict=True):
        if not torch.isfinite(image).all():
            raise BrokenImage(f"the image of seed {seed} holds NaN; it was not kept")
        if image.max().item() < BLACK_MAX_VALUE:
            raise BrokenImage(f"the image of seed {seed} is black; it was not kept")
