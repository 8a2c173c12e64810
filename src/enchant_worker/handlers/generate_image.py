"""`generate_image`: illustrate a scene (or a raw prompt) with Stable Diffusion and the story's LoRA styles.

The metadata is `jobspecs.generate_image.GenerateImageSpec`. Each image gets its own seed (seed,
seed+1, ...; derived from the job id when unset, so that a retried job draws the same images). PNGs go to storage under content-addressed paths with AUTOMATIC1111's
`parameters` chunk; one `images` row per image. The base pipeline and the LoRA adapters stay resident
in this process between jobs (`providers_for`). A GPU worker may hand several compatible jobs to
`run_batch` at once (README "Batching"): each is prepared and finished as alone, drawn in one call.

Every stored image is analysed (`generation.image_quality`: exposure, contrast, sharpness, broken
images) from its file, and scored for prompt alignment where a CLIP model is configured
(`generation.clip_alignment`); the result goes into the row's `quality` and `quality_score`. With
`regenerate_below`, images scoring lower are drawn again with new seeds (at most `max_regenerations`
times each) before anything is stored; every seed tried is recorded with its score.

Importing this module does not import torch (the CLI validates with it before enqueueing).
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker import __version__
from enchant_worker.cache import shared_cache
from enchant_worker.errors import ConfigurationError, InvalidJob, JobCancelled
from enchant_worker.generation.params import validate_settings
from enchant_worker.handlers.scene_context import (
    JobLora,
    PresetRecord,
    ResolvedLora,
    SceneRecord,
    load_preset,
    load_scene,
    lora_folders,
    resolve_loras,
    user_preferences,
    user_tier,
)
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.generate_image import (
    COUNT_RANGE,
    SEED_RANGE,
    SETTING_KEYS,
    GenerateImageSpec,
    check_int,
)
from enchant_worker.queue.affinity import Warm
from enchant_worker.sql import q
from enchant_worker.storage import Storage, StoredFileMissing, local_copy, storage_for
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

JOB_TYPE = "generate_image"
# Aliases a preset's `parameters` may use (the web app writes diffusers' names).
PRESET_ALIASES = {"guidance_scale": "cfg_scale", "cfg": "cfg_scale", "num_inference_steps": "steps"}
DONE_BEFORE_SAVING_PCT = 99  # 100 once the files and rows are written
# A re-drawn image's seed: seed + try × stride (mod 2^32). Deterministic (a retried job draws the same
# images) and far from the job's own seed, seed+1, ... of its other images.
REGENERATION_SEED_STRIDE = 1_000_003


def validate(metadata: dict[str, Any]) -> GenerateImageSpec:
    """The job's input as a spec; InvalidJob naming the field and its allowed values otherwise."""
    return parse(GenerateImageSpec, metadata)


def _job_loras(spec: GenerateImageSpec) -> tuple[JobLora, ...]:
    return tuple(
        JobLora(index=i, name=lo.name, lora_model_id=lo.lora_model_id, strength=lo.strength)
        for i, lo in enumerate(spec.loras)
    )


# -- 2. resident providers (one set per process and configuration) -----------------------------

_providers: dict[tuple, Any] = {}
_providers_lock = threading.Lock()


def _provider_options(settings) -> tuple[tuple, dict[str, Any]]:
    """The key of this configuration's provider set, and the local provider's options."""
    # LoRAs copied from object storage load from its cache folder
    roots = [str(Path(settings.storage)), str(settings.storage_cache), *(str(p) for p in settings.lora_dirs)]
    local = {
        "models_dir": str(settings.models_dir),
        "models_config": str(settings.models_config),
        "lora_roots": tuple(roots),
        "device": settings.device,
        "dtype": settings.dtype,
        "compile": settings.compile,
        "max_adapters": settings.lora_cache_max_count,
        "max_adapter_bytes": settings.lora_cache_max_bytes,
        "max_models": settings.model_cache_max_models,
        "max_model_bytes": settings.model_cache_max_bytes,
    }
    return (*sorted(local.items()), str(settings.providers_path)), local


def providers_for(settings) -> Any:
    """The process-wide provider registry for these settings, created on first use. The local
    provider inside it keeps the base pipeline and the LoRA adapters resident between jobs."""
    from enchant_worker.providers import ProviderRegistry

    key, local = _provider_options(settings)
    with _providers_lock:
        if key not in _providers:
            from enchant_worker.providers.config import build_remote, load_providers_config

            config = load_providers_config(settings.providers_path)
            registry = ProviderRegistry.default({"local": local})
            for provider in build_remote(config):
                registry.register(provider)
            registry.roles = dict(config.roles)
            _providers[key] = registry
        return _providers[key]


def forget_providers() -> None:
    """Drop the resident pipelines (tests; a worker keeps them for its lifetime)."""
    with _providers_lock:
        _providers.clear()
        _warm_keys.clear()


# -- warm affinity: the job keys this process can start without loading anything -----------------
#
# The lease compares the keys the database derives from each job (Job.affinity_model / affinity_loras)
# with what a worker advertises. What a key needs is learned from the jobs run here: the model the
# local provider used and the LoRA files it activated (story styles included); the key is warm while
# that model is resident and those files are loaded into it.

WARM_KEYS_MAX = 256
_warm_keys: OrderedDict[tuple[str, tuple[str, ...]], tuple[str, frozenset[str]]] = OrderedDict()


def _remember_warm(job, result) -> None:
    if job.affinity_model is None:
        return
    files = frozenset(a["sha256"] for a in result.details.get("loras") or () if a.get("sha256"))
    key = (job.affinity_model, tuple(job.affinity_loras or ()))
    with _providers_lock:
        _warm_keys[key] = (result.model, files)
        _warm_keys.move_to_end(key)
        while len(_warm_keys) > WARM_KEYS_MAX:
            _warm_keys.popitem(last=False)


def resident(settings) -> Warm:
    """What this process has loaded, as job keys (the worker advertises it to each lease)."""
    key, _ = _provider_options(settings)
    with _providers_lock:
        learned = list(_warm_keys.items())
        registry = _providers.get(key)
    local = registry.created("local") if learned and registry is not None else None
    if local is None:
        return Warm()
    loaded = local.resident()
    models: set[str] = set()
    loras: set[str] = set()
    for (model_key, lora_keys), (model, files) in learned:
        if model in loaded:
            models.add(model_key)
            if files <= loaded[model]:
                loras.update(lora_keys)
    return Warm.of(models, loras)


# -- 3. the job ---------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What the job read from the database."""

    record: SceneRecord | None
    preset: PresetRecord | None
    loras: list[ResolvedLora]
    user_id: uuid.UUID | None
    tier: str
    style_preference: str | None
    warnings: list[str]


@dataclass
class Prepared:
    """A job read, its prompt built, its provider and parameters chosen: what the draw needs."""

    inputs: Inputs
    built: Any  # generation.prompts.BuiltPrompt
    provider: Any
    reason: str
    request: Any  # providers.base.GenerationRequest
    timings: dict[str, float]
    run_started: float


def run(ctx: JobContext[GenerateImageSpec]) -> dict[str, Any]:
    prepared = _prepare(ctx)
    # 4. Generate: progress at each denoising step; a cancel stops within one step, before the decode
    result = prepared.provider.generate(
        prepared.request, on_progress=_progress_to([ctx]), is_cancelled=ctx.is_cancelled
    )
    return _finish(ctx, prepared, result)


def run_batch(ctxs: list[JobContext[GenerateImageSpec]]) -> list[dict[str, Any] | Exception]:
    """Cross-job batching: several jobs (leased together for the same batch key) drawn in shared
    pipeline calls where their provider batches (`generate_batch`: the local provider). Each job is
    prepared and finished on its own, so an error found late (a scene gone, a LoRA refused, a broken
    image, a cancel) is that job's alone. One answer per job: its result or its error."""
    answers: list[dict[str, Any] | Exception | None] = [None] * len(ctxs)
    prepared: dict[int, Prepared] = {}
    for i, ctx in enumerate(ctxs):
        try:
            prepared[i] = _prepare(ctx)
        except Exception as exc:
            answers[i] = exc
    by_provider: dict[int, list[int]] = {}
    for i, job in prepared.items():
        by_provider.setdefault(id(job.provider), []).append(i)
    for members in by_provider.values():
        provider = prepared[members[0]].provider
        draw_batch = getattr(provider, "generate_batch", None)
        if draw_batch is not None and len(members) > 1:
            results = draw_batch(
                [prepared[i].request for i in members],
                _progress_to([ctxs[i] for i in members]),
                [ctxs[i].is_cancelled for i in members],
            )
        else:
            results = [_draw_alone(provider, prepared[i].request, ctxs[i]) for i in members]
        for i, result in zip(members, results, strict=True):
            try:
                answers[i] = (
                    result if isinstance(result, Exception) else _finish(ctxs[i], prepared[i], result)
                )
            except Exception as exc:
                answers[i] = exc
    return answers  # type: ignore[return-value]  # every job has its answer by now


def _draw_alone(provider, request, ctx: JobContext) -> Any:
    try:
        return provider.generate(request, on_progress=_progress_to([ctx]), is_cancelled=ctx.is_cancelled)
    except Exception as exc:
        return exc


def _progress_to(ctxs: list[JobContext]):
    def on_progress(done: int, total: int) -> None:
        stage = "decoding" if done >= total else "denoising"  # the VAE decode follows the last step
        for ctx in ctxs:
            ctx.progress(DONE_BEFORE_SAVING_PCT * done / total, stage=stage, step=done, total=total)

    return on_progress


def _prepare(ctx: JobContext[GenerateImageSpec]) -> Prepared:
    from enchant_worker.generation.prompts import LoraStyle, build_raw_prompt, build_scene_prompt
    from enchant_worker.providers.base import GenerationRequest, LoraInput

    spec: GenerateImageSpec = ctx.spec
    job, settings = ctx.job, ctx.settings
    timings: dict[str, float] = {"queue_wait_s": _queue_wait_s(job.created_at, job.started_at)}
    run_started = started = time.perf_counter()

    # 1. Read the scene, the preset and the LoRAs from the database
    with ctx.connect() as conn:
        inputs = _read_inputs(conn, spec, ctx)

    # 2. Build the prompt: deterministic, every part with its source
    styles = [LoraStyle(lo.name, lo.trigger_words, lo.lora_model_id) for lo in inputs.loras]
    preset = inputs.preset.preset if inputs.preset else None
    if inputs.record is not None:
        built = build_scene_prompt(inputs.record.scene, preset, styles, spec.negative_prompt)
    else:
        built = build_raw_prompt(spec.prompt or "", preset, styles, spec.negative_prompt)
    timings["context_s"] = time.perf_counter() - started

    # 3. Choose the provider and the parameters (model defaults < preset < job; seeds fixed now)
    provider, reason = _choose_provider(settings, spec, inputs)
    model = spec.model or (inputs.preset.model_name if inputs.preset else None)
    parameters = _parameters(spec, inputs.preset, job.id)
    # the provider loads the model (and activates the LoRAs) before its first step: say so, not "0 %"
    ctx.progress(
        0,
        stage="loading LoRAs" if inputs.loras and _model_resident(provider, model) else "loading model",
        provider=provider.name,
        model=model,
    )
    request = GenerationRequest(
        prompt=built.prompt,
        negative_prompt=built.negative_prompt,
        model=model,
        parameters=parameters,
        loras=[LoraInput(lo.name, str(lo.path), lo.strength) for lo in inputs.loras],
    )
    return Prepared(inputs, built, provider, reason, request, timings, run_started)


def _finish(ctx: JobContext, prepared: Prepared, result) -> dict[str, Any]:
    spec: GenerateImageSpec = ctx.spec
    job, settings = ctx.job, ctx.settings
    inputs, built, provider, request, timings = (
        prepared.inputs,
        prepared.built,
        prepared.provider,
        prepared.request,
        prepared.timings,
    )
    if provider.name == "local":
        _remember_warm(job, result)
    timings.update(result.timings_s)
    if ctx.is_cancelled():
        raise JobCancelled()  # nothing is written for a job cancelled after its last step

    # 5. Draw again the images below the job's quality threshold (new seeds, bounded tries)
    tried: list[list[dict[str, Any]]] = [[] for _ in result.images]
    if spec.regeneration is not None:
        started = time.perf_counter()
        result, tried = _regenerate_weak(ctx, provider, request, result, *spec.regeneration)
        timings["regenerate_s"] = time.perf_counter() - started

    # 6. Store the PNGs; analyse each stored file (and its prompt alignment where a CLIP model is set)
    ctx.progress(DONE_BEFORE_SAVING_PCT, stage="saving", images=len(result.images))
    started = time.perf_counter()
    files = _write_pngs(storage_for(settings), job, spec, inputs, built, result, provider.name)
    timings["save_s"] = time.perf_counter() - started
    qualities, quality_warnings = _analyse_stored(
        settings, files, result.images, built.prompt, result.model, tried, timings
    )
    timings["run_s"] = time.perf_counter() - prepared.run_started
    timings = {k: round(v, 4) for k, v in timings.items()}
    with ctx.connect() as conn, conn.transaction():
        conn.execute(q("defer_commit_flush"))  # the completion's commit flushes it (see the SQL)
        images = _insert_rows(conn, job, inputs, built, result, provider.name, files, timings, qualities)
        if inputs.preset is not None and job.attempts <= 1:
            conn.execute(q("generation_preset_used"), {"id": inputs.preset.preset.id})
    ctx.progress(100, stage="done")

    # 7. The result: images (with their quality), the prompt explained, and what to know
    return {
        "images": images,
        "scene_id": inputs.record.scene.id if inputs.record else None,
        "story_id": inputs.record.story_id if inputs.record else None,
        "provider": provider.name,
        "provider_reason": prepared.reason,
        "cost": round(float(result.details.get("cost", provider.cost_per_image * len(result.images))), 6),
        "model": result.model,
        "parameters": result.parameters,
        "seeds": list(result.seeds),
        "loras": _lora_report(inputs.loras, result),
        "preset": inputs.preset.preset.name if inputs.preset else None,
        "prompt": built.explain(),
        "warnings": inputs.warnings + list(result.warnings) + quality_warnings,
        "regenerations": [{"image": i, "tries": t} for i, t in enumerate(tried) if len(t) > 1],
        "timings_s": timings,
        "details": _jsonable(result.details),
    }


def _read_inputs(conn, spec: GenerateImageSpec, ctx: JobContext) -> Inputs:
    job, settings = ctx.job, ctx.settings
    scene_id = spec.scene_id
    if scene_id is None and spec.prompt is None:
        if job.entity_type == "scene" and job.entity_id is not None:
            scene_id = job.entity_id
        else:
            raise InvalidJob("scene_id: give scene_id or prompt (or enqueue the job for a scene entity)")
    if spec.branch_id is not None and scene_id is None:
        raise InvalidJob("branch_id: a branch applies only to a scene (give scene_id)")
    cache = shared_cache(settings)  # story metadata and user preferences, shared across jobs and with the API
    record = load_scene(conn, scene_id, spec.branch_id, cache) if scene_id is not None else None
    user_id = job.user_id or (record.owner_id if record else None)
    preset = load_preset(conn, spec.preset, user_id) if spec.preset else None
    loras, warnings = resolve_loras(
        conn,
        _job_loras(spec),
        record,
        user_id,
        _stored_lora(settings),
        lora_folders(settings),
        spec.story_styles,
    )
    tier, style = (record.owner_tier, record.style_preference) if record else (None, None)
    if job.user_id is not None and (record is None or job.user_id != record.owner_id):
        job_user_tier = user_tier(conn, job.user_id)
        if job_user_tier is not None:
            tier = job_user_tier
            style = style or user_preferences(conn, job.user_id, cache).get("style_preference")
    return Inputs(record, preset, loras, user_id, tier or "free", style, warnings)


def _choose_provider(settings, spec: GenerateImageSpec, inputs: Inputs) -> tuple[Any, str]:
    from enchant_worker.providers import SceneTraits, UserPreferences, select_optimal_provider
    from enchant_worker.providers.base import CAP_LORA

    registry = providers_for(settings)
    wanted = spec.provider or (inputs.preset.provider if inputs.preset else None)
    if wanted is not None:
        try:
            provider = registry.get(wanted)
        except ConfigurationError as exc:
            raise InvalidJob(str(exc)) from None
        reason = "named by the job" if spec.provider else "named by the preset"
    else:
        scene = SceneTraits(inputs.record.emotional_tone if inputs.record else None)
        prefs = UserPreferences(inputs.style_preference, inputs.tier)
        try:
            chosen = select_optimal_provider(registry, scene, prefs)
        except LookupError as exc:
            raise ConfigurationError(f"provider: {exc}") from None
        provider, reason = chosen.provider, chosen.reason
    if inputs.loras and CAP_LORA not in provider.capabilities:
        if wanted is not None:
            raise InvalidJob(f"loras: provider {provider.name!r} does not take LoRAs")
        provider, reason = registry.get("local"), "LoRA styles need the local provider"
    return provider, reason


def _parameters(spec: GenerateImageSpec, preset: PresetRecord | None, job_id: uuid.UUID) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if preset is not None:
        for key, value in preset.parameters.items():
            key = PRESET_ALIASES.get(key, key)
            if key in SETTING_KEYS and key not in ("seed", "seeds"):
                values[key] = value
        try:
            validate_settings(values)
        except InvalidJob as exc:
            raise InvalidJob(f"preset {preset.preset.name!r}: parameters.{exc}") from None
    job_values = dict(spec.settings)
    if {"width", "height"} & job_values.keys() or "size" in job_values:
        for key in ("size", "width", "height"):
            values.pop(key, None)
    values.update(job_values)
    if "seed" not in values and "seeds" not in values:
        values["seed"] = job_id.int % (SEED_RANGE[1] + 1)  # a retry of this job draws the same images
    check_int("count", values.get("count", 1), COUNT_RANGE)
    return values


# -- 4. files and rows ----------------------------------------------------------------------------


def _write_pngs(
    storage, job, spec, inputs: Inputs, built, result, provider_name: str
) -> list[dict[str, Any]]:
    from enchant_worker.content_address import content_address, content_hash
    from enchant_worker.generation.png_metadata import ImageParameters, png_bytes

    p = result.parameters
    lora_hashes = identity_hashes(inputs.loras, result.details.get("lora_hashes") or {})
    files = []
    for image, seed in zip(result.images, result.seeds, strict=True):
        parameters = ImageParameters(
            prompt=built.prompt,
            negative_prompt=built.negative_prompt,
            steps=p["steps"],
            sampler=p["sampler"],
            cfg_scale=p["cfg_scale"],
            seed=seed,
            width=image.width,
            height=image.height,
            model=result.model,
            model_hash=result.details.get("model_hash"),
            loras=[(lo.file_stem, lo.strength, lora_hashes.get(lo.name, "")) for lo in inputs.loras],
            version=f"enchant-worker {__version__}",
        )
        png_spec = {
            "job_id": str(job.id),
            "job_type": JOB_TYPE,
            "metadata": job.metadata,
            "scene_id": inputs.record.scene.id if inputs.record else None,
            "story_id": inputs.record.story_id if inputs.record else None,
            "branch_id": str(spec.branch_id) if spec.branch_id else None,
            "preset": inputs.preset.preset.name if inputs.preset else None,
            "provider": provider_name,
            "model": result.model,
            "seed": seed,
            "parameters": p,
            "loras": [
                {
                    "name": lo.name,
                    "file": lo.file_stem,
                    "strength": lo.strength,
                    "hash": lora_hashes.get(lo.name),
                }
                for lo in inputs.loras
            ],
            "prompt": built.prompt,
            "negative_prompt": built.negative_prompt,
        }
        data = png_bytes(image, parameters, png_spec)
        relative = content_address(data, ".png", "images")
        _write_once(storage, relative, data)
        files.append(
            {
                "path": relative,
                "hash": content_hash(data),
                "seed": seed,
                "width": image.width,
                "height": image.height,
            }
        )
    return files


def identity_hashes(loras: list[ResolvedLora], loaded: dict[str, str]) -> dict[str, str]:
    """Each LoRA's hash as AUTOMATIC1111 and Civitai compute it (AutoV3: SHA-256 of the safetensors
    tensor data, first 12 hex digits) for the file a user downloads: the kohya-format sibling
    `<stem>.kohya.safetensors` of a trained LoRA when there is one, else the file that was loaded."""
    from enchant_worker.generation.adapters import SHORT_HASH_CHARS, file_hashes

    out = dict(loaded)
    for lo in loras:
        path = Path(lo.path)
        kohya = path.with_name(path.name.removesuffix(".safetensors") + ".kohya.safetensors")
        if not path.name.endswith(".kohya.safetensors") and kohya.is_file():
            out[lo.name] = file_hashes(kohya).addnet[:SHORT_HASH_CHARS]
    return out


def _write_once(storage: Storage, key: str, data: bytes) -> None:
    """Store `data` under its content address; an object already there is the same file."""
    if not storage.exists(key):
        storage.put_bytes(key, data)


def _stored_lora(settings) -> Callable[[str], Path]:
    """A LoRA file named relative to storage, as a path diffusers can load (copied from object storage)."""
    storage = storage_for(settings)
    return lambda key: storage.local_path(key) or local_copy(storage, key, settings.storage_cache)


@contextmanager
def _stored_file(settings, key: str) -> Iterator[Path]:
    """The stored image as a local file to check against what was written: the file itself, or the object
    read back from object storage into a temporary file (gone afterwards; a missing object leaves no file,
    and the check says so)."""
    storage = storage_for(settings)
    local = storage.local_path(key)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="enchant-check-") as folder:
        path = Path(folder) / Path(key).name
        try:
            path.write_bytes(storage.get_bytes(key))
        except StoredFileMissing:
            pass
        yield path


def _insert_rows(
    conn, job, inputs: Inputs, built, result, provider_name, files, timings, qualities
) -> list[dict]:
    images = []
    loras = _lora_report(inputs.loras, result)
    for f, quality in zip(files, qualities, strict=True):
        parameters = {
            **result.parameters,
            "count": len(files),
            "loras": loras,
            "preset": inputs.preset.preset.name if inputs.preset else None,
            "preset_id": inputs.preset.preset.id if inputs.preset else None,
            "branch_id": str(job.metadata.get("branch_id")) if job.metadata.get("branch_id") else None,
            "device": _jsonable(result.details.get("device")),
        }
        row = conn.execute(
            q("insert_generated_image"),
            {
                "scene_id": inputs.record.scene.id if inputs.record else None,
                "user_id": inputs.user_id,
                "job_id": job.id,
                "job_created_at": job.created_at,
                "provider": provider_name,
                "model_name": result.model,
                "prompt": built.prompt,
                "negative_prompt": built.negative_prompt,
                "seed": f["seed"],
                "parameters": Jsonb(parameters),
                "file_path": f["path"],
                "content_hash": f["hash"],
                "width": f["width"],
                "height": f["height"],
                "timings": Jsonb(timings),
                "quality": Jsonb(quality),
                "quality_score": quality.get("score"),
            },
        ).fetchone()
        images.append(
            {
                "id": str(row["id"]),
                **f,
                "quality_score": quality.get("score"),
                "quality_flags": quality.get("flags", []),
            }
        )
    return images


# -- 5. quality: re-generation and analysis --------------------------------------------------------


def _regenerate_weak(ctx: JobContext, provider, request, result, threshold: float, max_tries: int):
    """The result with each image below `threshold` drawn again (a new seed per try, all weak images of
    a round in one provider call) until it passes or its tries are spent; the best image is kept (the
    first to pass; else the highest score, the earliest on ties). Also every image's tries, in order:
    [{seed, score, flags, kept}], the first being the job's own seed."""
    from enchant_worker.generation.image_quality import analyze_image, below

    images, seeds = list(result.images), list(result.seeds)
    qualities = [analyze_image(image) for image in images]
    tried = [[_try(seed, q)] for seed, q in zip(seeds, qualities, strict=True)]
    parameters = {k: v for k, v in request.parameters.items() if k not in ("seed", "seeds", "count")}
    for attempt in range(1, max_tries + 1):
        weak = [i for i, q in enumerate(qualities) if below(q, threshold)]
        if not weak:
            break
        if ctx.is_cancelled():
            raise JobCancelled()
        new_seeds = [
            (tried[i][0]["seed"] + attempt * REGENERATION_SEED_STRIDE) % (SEED_RANGE[1] + 1) for i in weak
        ]

        def on_progress(done: int, total: int, _attempt: int = attempt, _weak: list[int] = weak) -> None:
            ctx.progress(
                DONE_BEFORE_SAVING_PCT,
                stage="regenerating",
                attempt=_attempt,
                images=len(_weak),
                step=done,
                total=total,
            )

        # the local provider draws them in one call (a seed list); remote ones take one seed per call
        if provider.name == "local":
            calls = [(weak, {**parameters, "seeds": new_seeds})]
        else:
            calls = [
                ([i], {**parameters, "seed": s, "count": 1}) for i, s in zip(weak, new_seeds, strict=True)
            ]
        for indices, call_parameters in calls:
            again = provider.generate(
                replace(request, parameters=call_parameters),
                on_progress=on_progress,
                is_cancelled=ctx.is_cancelled,
            )
            for i, image, seed in zip(indices, again.images, again.seeds, strict=False):  # fewer: kept as is
                quality = analyze_image(image)
                tried[i].append(_try(seed, quality))
                if _better(quality, qualities[i], threshold):
                    images[i], seeds[i], qualities[i] = image, seed, quality
    for i, seed in enumerate(seeds):
        for entry in tried[i]:
            entry["kept"] = entry["seed"] == seed
    return replace(result, images=images, seeds=seeds), tried


def _try(seed: int, quality: dict[str, Any]) -> dict[str, Any]:
    return {"seed": seed, "score": quality.get("score"), "flags": quality.get("flags", [])}


def _better(new: dict[str, Any], old: dict[str, Any], threshold: float) -> bool:
    from enchant_worker.generation.image_quality import below

    if below(old, threshold) and not below(new, threshold):
        return True
    return below(old, threshold) and (new.get("score") or 0.0) > (old.get("score") or 0.0)


def _analyse_stored(
    settings,
    files: list[dict[str, Any]],
    images: list,
    prompt: str,
    model: str | None,
    tried: list[list[dict[str, Any]]],
    timings: dict[str, float],
) -> tuple[list[dict], list[str]]:
    """Each stored image's quality, with its prompt alignment or why it was skipped: the pixels from
    memory, once the stored file is checked to hold the bytes written. A missing or corrupt file is said
    so in its quality and a warning; the job goes on."""
    from enchant_worker.handlers.image_quality import analyse_stored, clip_scorer

    started = time.perf_counter()
    scorer, skipped = clip_scorer(settings, model)
    timings["clip_load_s"] = time.perf_counter() - started
    qualities, warnings = [], []
    timings["quality_s"] = timings["alignment_s"] = 0.0
    for f, image, tries in zip(files, images, tried, strict=True):
        with _stored_file(settings, f["path"]) as stored:
            quality = analyse_stored(stored, prompt, scorer, skipped, timings, image=image, sha256=f["hash"])
        if quality["status"] == "unreadable":
            warnings.append(f"image of seed {f['seed']}: {quality['reason']}; its quality is unknown")
        if len(tries) > 1:
            quality["regenerations"] = tries
        qualities.append(quality)
    return qualities, warnings


def _lora_report(loras: list[ResolvedLora], result) -> list[dict[str, Any]]:
    hashes = result.details.get("lora_hashes") or {}
    return [
        {
            "name": lo.name,
            "strength": lo.strength,
            "source": lo.source,
            "lora_model_id": lo.lora_model_id,
            "hash": hashes.get(lo.name),
            **({"note": lo.note} if lo.note else {}),
        }
        for lo in loras
    ]


def _model_resident(provider, model: str | None) -> bool:
    """Whether the provider says the model is loaded already (providers that cannot tell: no)."""
    check = getattr(provider, "is_resident", None)
    try:
        return bool(check(model)) if callable(check) else False
    except Exception:  # a stage label must never fail a job
        return False


def _queue_wait_s(created_at: datetime | None, started_at: datetime | None) -> float:
    if created_at is None or started_at is None:
        return 0.0
    return max(0.0, (started_at - created_at).total_seconds())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


HANDLER = Handler(
    JOB_TYPE,
    run,
    validate=validate,
    gpu=True,
    resident=resident,
    description="illustrate a scene or a prompt with Stable Diffusion and LoRA styles",
    run_batch=run_batch,
)
