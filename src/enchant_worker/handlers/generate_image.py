"""`generate_image`: illustrate a scene (or a raw prompt) with Stable Diffusion and the story's LoRA styles.

Metadata (all optional but one of scene_id / prompt, or a job whose entity is the scene):

    scene_id, prompt, negative_prompt, preset (id or name), provider, model,
    loras [{name | lora_model_id, strength}] or ["NAME:STRENGTH"], story_styles (default true),
    seed | seeds, steps, cfg, sampler, size 'WxH' | width + height, count, branch_id

Each image gets its own seed (seed, seed+1, ...; derived from the job id when unset, so that a retried
job draws the same images). PNGs go to storage under content-addressed paths with AUTOMATIC1111's
`parameters` chunk; one `images` row per image. The base pipeline and the LoRA adapters stay resident
in this process between jobs (`providers_for`).

Importing this module does not import torch (the CLI validates with it before enqueueing).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker import __version__
from enchant_worker.cache import shared_cache
from enchant_worker.errors import ConfigurationError, InvalidJob, JobCancelled
from enchant_worker.generation.errors import InvalidGeneration
from enchant_worker.generation.params import (
    COUNT_RANGE,
    MAX_LORAS,
    SEED_RANGE,
    check_int,
    check_prompt,
    validate_settings,
)
from enchant_worker.handlers.scene_context import (
    JobLora,
    PresetRecord,
    ResolvedLora,
    SceneRecord,
    check_strength,
    load_preset,
    load_scene,
    lora_folders,
    resolve_loras,
    user_preferences,
    user_tier,
)
from enchant_worker.sql import q
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

JOB_TYPE = "generate_image"
SETTING_KEYS = ("seed", "seeds", "steps", "cfg", "cfg_scale", "sampler", "size", "width", "height", "count")
OTHER_KEYS = ("scene_id", "prompt", "negative_prompt", "preset", "provider", "model", "loras",
              "story_styles", "branch_id")
# Aliases a preset's `parameters` may use (the web app writes diffusers' names).
PRESET_ALIASES = {"guidance_scale": "cfg_scale", "cfg": "cfg_scale", "num_inference_steps": "steps"}
DONE_BEFORE_SAVING_PCT = 99  # 100 once the files and rows are written


@dataclass(frozen=True)
class GenerateImageSpec:
    scene_id: uuid.UUID | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    preset: str | None = None
    provider: str | None = None
    model: str | None = None
    loras: tuple[JobLora, ...] = ()
    story_styles: bool = True
    branch_id: uuid.UUID | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # checked; merged over the preset's in run


# -- 1. validation (no database, no torch) -----------------------------------------------------


def validate(metadata: dict[str, Any]) -> GenerateImageSpec:
    """The job's input as a spec; InvalidJob naming the field and its allowed values otherwise."""
    if not isinstance(metadata, Mapping):
        raise InvalidJob("metadata: must be a JSON object")
    unknown = sorted(set(metadata) - set(SETTING_KEYS) - set(OTHER_KEYS))
    if unknown:
        raise InvalidJob(f"{unknown[0]}: unknown field; known fields: {', '.join(OTHER_KEYS + SETTING_KEYS)}")
    prompt = metadata.get("prompt")
    scene_id = _uuid_field(metadata, "scene_id")
    if scene_id is not None and prompt is not None:
        raise InvalidJob("prompt: give either scene_id or prompt, not both")
    return GenerateImageSpec(
        scene_id=scene_id,
        prompt=check_prompt("prompt", prompt) if prompt is not None else None,
        negative_prompt=check_prompt("negative_prompt", metadata.get("negative_prompt"), required=False)
        if metadata.get("negative_prompt") is not None
        else None,
        preset=_name_field(metadata, "preset"),
        provider=_name_field(metadata, "provider"),
        model=_name_field(metadata, "model"),
        loras=_job_loras(metadata.get("loras")),
        story_styles=_bool_field(metadata, "story_styles", True),
        branch_id=_uuid_field(metadata, "branch_id"),
        settings=_job_settings(metadata),
    )


def _job_settings(metadata: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: metadata[k] for k in SETTING_KEYS if metadata.get(k) is not None}
    if "cfg" in values:
        if "cfg_scale" in values:
            raise InvalidJob("cfg: give cfg or cfg_scale, not both")
        values["cfg_scale"] = values.pop("cfg")
        _checked("cfg", lambda: validate_settings({"cfg_scale": values["cfg_scale"]}))
    if "size" in values and ("width" in values or "height" in values):
        raise InvalidJob("size: give size or width and height, not both")
    if values.get("seed") == -1:  # AUTOMATIC1111's "random": here, drawn from the job id
        del values["seed"]
    if "seed" in values and "seeds" in values:
        raise InvalidJob("seed: give seed (and count) or seeds, not both")
    validate_settings(values)  # ranges only; the model's and the preset's defaults come in at run time
    return values


def _checked(field_name: str, check) -> Any:
    try:
        return check()
    except InvalidGeneration as exc:
        message = str(exc)
        raise InvalidGeneration(field_name + message[message.index(":"):]) from None


def _job_loras(value: Any) -> tuple[JobLora, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidJob("loras: must be a list of {name or lora_model_id, strength} or 'NAME:STRENGTH'")
    if len(value) > MAX_LORAS:
        raise InvalidJob(f"loras: at most {MAX_LORAS} LoRAs per job, not {len(value)}")
    loras = []
    for i, item in enumerate(value):
        where = f"loras[{i}]"
        if isinstance(item, str):
            name, sep, raw = item.rpartition(":")
            if not sep:
                name, raw = item, None
            try:
                strength = None if raw is None else float(raw)
            except ValueError:
                raise InvalidJob(f"{where}.strength: must be a number, not {raw!r}") from None
            item = {"name": name, "strength": strength}
        if not isinstance(item, Mapping):
            raise InvalidJob(f"{where}: must be {{name or lora_model_id, strength}} or 'NAME:STRENGTH'")
        extra = sorted(set(item) - {"name", "lora_model_id", "id", "strength"})
        if extra:
            raise InvalidJob(f"{where}.{extra[0]}: unknown field; known: name, lora_model_id, strength")
        lora_id = _uuid_field(item, "lora_model_id", where) or _uuid_field(item, "id", where)
        name = item.get("name")
        if lora_id is None and (not isinstance(name, str) or not name.strip()):
            raise InvalidJob(f"{where}: needs a name or a lora_model_id")
        strength = item.get("strength")
        loras.append(
            JobLora(
                index=i,
                name=name.strip() if isinstance(name, str) else None,
                lora_model_id=lora_id,
                strength=None if strength is None else check_strength(f"{where}.strength", strength),
            )
        )
    return tuple(loras)


def _uuid_field(values: Mapping[str, Any], key: str, where: str | None = None) -> uuid.UUID | None:
    value = values.get(key)
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        name = f"{where}.{key}" if where else key
        raise InvalidJob(f"{name}: must be a UUID, not {value!r}") from None


def _name_field(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidJob(f"{key}: must be a non-empty name of at most 200 characters, not {value!r}")
    return value.strip()


def _bool_field(values: Mapping[str, Any], key: str, default: bool) -> bool:
    value = values.get(key, default)
    if not isinstance(value, bool):
        raise InvalidJob(f"{key}: must be true or false, not {value!r}")
    return value


# -- 2. resident providers (one set per process and configuration) -----------------------------

_providers: dict[tuple, Any] = {}
_providers_lock = threading.Lock()


def providers_for(settings) -> Any:
    """The process-wide provider registry for these settings, created on first use. The local
    provider inside it keeps the base pipeline and the LoRA adapters resident between jobs."""
    from enchant_worker.providers import ProviderRegistry

    roots = [str(Path(settings.storage)), *(str(p) for p in settings.lora_dirs)]
    local = {
        "models_dir": str(settings.models_dir),
        "models_config": str(settings.models_config),
        "lora_roots": tuple(roots),
        "device": settings.device,
        "dtype": settings.dtype,
        "compile": settings.compile,
        "max_adapters": settings.lora_cache_max_count,
        "max_adapter_bytes": settings.lora_cache_max_bytes,
    }
    key = tuple(sorted(local.items()))
    with _providers_lock:
        if key not in _providers:
            _providers[key] = ProviderRegistry.default({"local": local})
        return _providers[key]


def forget_providers() -> None:
    """Drop the resident pipelines (tests; a worker keeps them for its lifetime)."""
    with _providers_lock:
        _providers.clear()


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


def run(ctx: JobContext) -> dict[str, Any]:
    from enchant_worker.generation.prompts import LoraStyle, build_raw_prompt, build_scene_prompt

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
    ctx.progress(0, stage="generating", provider=provider.name, model=model)

    # 4. Generate: progress at each denoising step; a cancel stops within one step, before the decode
    def on_progress(done: int, total: int) -> None:
        ctx.progress(DONE_BEFORE_SAVING_PCT * done / total, step=done, total=total)

    from enchant_worker.providers.base import GenerationRequest, LoraInput

    request = GenerationRequest(
        prompt=built.prompt,
        negative_prompt=built.negative_prompt,
        model=model,
        parameters=parameters,
        loras=[LoraInput(lo.name, str(lo.path), lo.strength) for lo in inputs.loras],
    )
    result = provider.generate(request, on_progress=on_progress, is_cancelled=ctx.is_cancelled)
    timings.update(result.timings_s)
    if ctx.is_cancelled():
        raise JobCancelled()  # nothing is written for a job cancelled after its last step

    # 5. Store the PNGs, then one images row per image in one transaction
    started = time.perf_counter()
    files = _write_pngs(settings.storage, job, spec, inputs, built, result, provider.name)
    timings["save_s"] = time.perf_counter() - started
    timings["run_s"] = time.perf_counter() - run_started
    timings = {k: round(v, 4) for k, v in timings.items()}
    with ctx.connect() as conn, conn.transaction():
        images = _insert_rows(conn, job, inputs, built, result, provider.name, files, timings)
        if inputs.preset is not None and job.attempts <= 1:
            conn.execute(q("generation_preset_used"), {"id": inputs.preset.preset.id})
    ctx.progress(100, stage="done")

    # 6. The result: images, the prompt explained, and what to know
    return {
        "images": images,
        "scene_id": inputs.record.scene.id if inputs.record else None,
        "story_id": inputs.record.story_id if inputs.record else None,
        "provider": provider.name,
        "provider_reason": reason,
        "model": result.model,
        "parameters": result.parameters,
        "seeds": list(result.seeds),
        "loras": _lora_report(inputs.loras, result),
        "preset": inputs.preset.preset.name if inputs.preset else None,
        "prompt": built.explain(),
        "warnings": inputs.warnings + list(result.warnings),
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
        conn, spec.loras, record, user_id, Path(settings.storage), lora_folders(settings), spec.story_styles
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
        except InvalidGeneration as exc:
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


def _write_pngs(storage, job, spec, inputs: Inputs, built, result, provider_name: str) -> list[dict[str, Any]]:
    from enchant_worker.content_address import content_address, content_hash
    from enchant_worker.generation.png_metadata import ImageParameters, png_bytes

    p = result.parameters
    lora_hashes = result.details.get("lora_hashes") or {}
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
            loras=[(lo.name, lo.strength, lora_hashes.get(lo.name, "")) for lo in inputs.loras],
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
            "loras": [{"name": lo.name, "strength": lo.strength, "hash": lora_hashes.get(lo.name)}
                      for lo in inputs.loras],
            "prompt": built.prompt,
            "negative_prompt": built.negative_prompt,
        }
        data = png_bytes(image, parameters, png_spec)
        relative = content_address(data, ".png", "images")
        _write_once(Path(storage) / relative, data)
        files.append({"path": relative, "hash": content_hash(data), "seed": seed,
                      "width": image.width, "height": image.height})
    return files


def _write_once(path: Path, data: bytes) -> None:
    """Write `data` at `path` atomically; a content-addressed file already there is the same file."""
    if path.is_file() and path.stat().st_size == len(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _insert_rows(conn, job, inputs: Inputs, built, result, provider_name, files, timings) -> list[dict]:
    images = []
    loras = _lora_report(inputs.loras, result)
    for f in files:
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
            },
        ).fetchone()
        images.append({"id": str(row["id"]), **f})
    return images


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
    description="illustrate a scene or a prompt with Stable Diffusion and LoRA styles",
)
