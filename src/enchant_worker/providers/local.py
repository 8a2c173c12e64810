"""The built-in provider: Stable Diffusion on this machine with diffusers, LoRAs through peft."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enchant_worker.errors import InvalidJob
from enchant_worker.generation.adapters import LoraRequest
from enchant_worker.generation.device import DevicePolicy, resolve_device
from enchant_worker.generation.generate import generate_batch
from enchant_worker.generation.params import GenerationParams, validate_settings
from enchant_worker.generation.pipelines import PipelineCache, ResidencyBudget, ResidentPipeline
from enchant_worker.model_catalog import ModelRegistry, ModelSpec, model_short_hash
from enchant_worker.providers.base import (
    CAP_LORA,
    CAP_NEGATIVE_PROMPT,
    CAP_SEED,
    CAP_TEXT_TO_IMAGE,
    CancelledFn,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    ProgressFn,
    ValidationResult,
)

DEFAULT_MODELS_DIR = Path("models")
DEFAULT_MODELS_CONFIG = Path("configs/models.toml")


class LocalDiffusersProvider:
    name = "local"
    capabilities = frozenset({CAP_TEXT_TO_IMAGE, CAP_LORA, CAP_NEGATIVE_PROMPT, CAP_SEED})
    cost_per_image = 0.0

    def __init__(
        self,
        models_dir: Path | str = DEFAULT_MODELS_DIR,
        models_config: Path | str | None = DEFAULT_MODELS_CONFIG,
        lora_roots: Sequence[Path | str] = (),
        device: str = "auto",
        dtype: str = "auto",
        compile: bool = False,
        max_adapters: int = 8,
        max_adapter_bytes: int = 2 * 1024**3,
        max_models: int | None = None,
        max_model_bytes: int | None = None,
        policy: DevicePolicy | None = None,
    ):
        self.registry = ModelRegistry.load(Path(models_dir), Path(models_config) if models_config else None)
        self.policy = policy or resolve_device(device, dtype, compile)
        roots = [Path(models_dir), *map(Path, lora_roots)]
        self.pipelines = PipelineCache(
            self.policy,
            roots,
            ResidencyBudget(max_models, max_model_bytes),
            max_adapters=max_adapters,
            max_adapter_bytes=max_adapter_bytes,
        )
        # One job at a time on the resident pipeline: its scheduler and active adapters are per job.
        self._run_lock = threading.Lock()

    @property
    def models(self) -> list[str]:
        return self.registry.names()

    @property
    def default_parameters(self) -> dict[str, Any]:
        return dict(self.registry.get(None).defaults)

    def is_available(self) -> bool:
        return True

    def get_model_info(self, model_name: str) -> ModelInfo:
        spec = self.registry.get(model_name)
        return ModelInfo(spec.name, spec.family, spec.description, dict(spec.defaults), spec.info())

    def validate_parameters(self, params: Mapping[str, Any], model: str | None = None) -> ValidationResult:
        try:
            validate_settings(params, self.registry.get(model).defaults)
        except InvalidJob as exc:
            return ValidationResult(False, (str(exc),))
        return ValidationResult(True)

    def is_resident(self, model: str | None) -> bool:
        """Whether the model is loaded already (then a job starts with its LoRAs, not a model load)."""
        return self.pipelines.is_resident(self.registry.get(model).name)

    def resident(self) -> dict[str, frozenset[str]]:
        """The models loaded now, each with the SHA-256 of its loaded LoRA files."""
        return self.pipelines.resident()

    @contextmanager
    def use(self, spec: ModelSpec) -> Iterator[tuple[ResidentPipeline, float]]:
        """The resident pipeline of `spec` (loaded the first time; the load's seconds too), held for one
        run: its scheduler and active adapters are per run, so every caller comes through here."""
        with self._run_lock:
            yield self.pipelines.get(spec)

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressFn | None = None,
        is_cancelled: CancelledFn | None = None,
    ) -> GenerationResult:
        (result,) = self.generate_batch([request], on_progress, [is_cancelled] if is_cancelled else None)
        if isinstance(result, Exception):
            raise result
        return result

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        on_progress: ProgressFn | None = None,
        is_cancelled: Sequence[CancelledFn] | None = None,
    ) -> list[GenerationResult | Exception]:
        """Several jobs' requests, those that can share a pipeline call (the same model, settings but
        seeds, LoRA set) in one batched call each (`generation.generate.generate_batch`: every image as
        its request alone would draw it). One answer per request: its result, or the error that is its
        own (an invalid setting, a cancel, a broken image). An error of a whole call (out of memory at
        batch size 1, a LoRA that does not load) is every member's answer of that call."""
        answers: list[GenerationResult | Exception | None] = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, ModelSpec, GenerationParams]]] = {}
        # 1. Resolve each request's model and validate its parameters over the model's defaults
        for i, request in enumerate(requests):
            try:
                spec = self.registry.get(request.model)
                settings = validate_settings(request.parameters, spec.defaults)
            except InvalidJob as exc:
                answers[i] = exc
                continue
            loras = tuple(LoraRequest(x.name, Path(x.path), x.strength) for x in request.loras)
            params = GenerationParams(request.prompt, request.negative_prompt, settings, loras)
            key = (
                spec.name,
                settings.width,
                settings.height,
                settings.steps,
                settings.cfg_scale,
                settings.sampler,
                loras,
            )
            groups.setdefault(key, []).append((i, spec, params))
        cancelled = list(is_cancelled) if is_cancelled is not None else [lambda: False] * len(requests)
        # 2. One call per group, on the resident pipeline (loaded the first time)
        for members in groups.values():
            spec = members[0][1]
            try:
                with self.use(spec) as (resident, load_s):
                    outcomes = generate_batch(
                        resident,
                        [p for _, _, p in members],
                        on_progress,
                        [cancelled[i] for i, _, _ in members],
                    )
            except Exception as exc:  # the whole call's error: each member's
                outcomes, load_s = [exc] * len(members), 0.0
            for (i, _, params), outcome in zip(members, outcomes, strict=True):
                answers[i] = (
                    outcome
                    if isinstance(outcome, Exception)
                    else self._result(spec, params.settings, outcome, load_s, len(members))
                )
        return answers  # type: ignore[return-value]  # every request has its answer by now

    def _result(self, spec: ModelSpec, settings, outcome, load_s: float, jobs: int) -> GenerationResult:
        used = {
            "width": settings.width,
            "height": settings.height,
            "steps": settings.steps,
            "cfg_scale": settings.cfg_scale,
            "sampler": settings.sampler,
        }
        return GenerationResult(
            images=outcome.images,
            seeds=list(outcome.seeds),
            model=spec.name,
            parameters=used,
            timings_s={"model_load_s": load_s, **outcome.timings_s},
            warnings=outcome.warnings,
            details={
                "family": spec.family,
                "device": self.policy.describe(),
                "batch_size": outcome.batch_size,
                "batched_jobs": jobs,
                "loras": outcome.adapters.active,
                "lora_hashes": outcome.adapters.hashes,
                "model_hash": model_short_hash(spec),
            },
        )
