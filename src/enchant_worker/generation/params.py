"""Generation parameters: the job's settings over the model's (and preset's) defaults, checked with the
job spec's checks (`jobspecs.generate_image`); every error names the field and the allowed range."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enchant_worker.errors import InvalidJob
from enchant_worker.generation.adapters import LoraRequest
from enchant_worker.jobspecs.generate_image import (
    CFG_SCALE_RANGE,
    COUNT_RANGE,
    SAMPLER_NAMES,
    SEED_RANGE,
    STEPS_RANGE,
    check_float,
    check_int,
    check_size,
    parse_size,
)


@dataclass(frozen=True)
class GenerationSettings:
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    seeds: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class GenerationParams:
    """Everything `generate()` needs: the prompt, the settings and the LoRA files."""

    prompt: str
    negative_prompt: str
    settings: GenerationSettings
    loras: tuple[LoraRequest, ...] = ()
    nan_guard: bool = True  # only benchmarks on random weights turn it off
    extra: dict[str, Any] = field(default_factory=dict)


def validate_settings(
    values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> GenerationSettings:
    """Settings from a job's metadata over the model's (and preset's) defaults; seeds drawn when unset."""
    merged = {**(defaults or {}), **{k: v for k, v in values.items() if v is not None}}
    if "size" in values and values["size"] is not None:
        merged["width"], merged["height"] = parse_size(values["size"])
    width = check_size("width", merged.get("width", 512))
    height = check_size("height", merged.get("height", 512))
    steps = check_int("steps", merged.get("steps", 25), STEPS_RANGE)
    cfg_scale = check_float("cfg_scale", merged.get("cfg_scale", merged.get("cfg", 7.0)), CFG_SCALE_RANGE)
    sampler = merged.get("sampler", "Euler")
    if sampler not in SAMPLER_NAMES:
        raise InvalidJob(f"sampler: must be one of {', '.join(SAMPLER_NAMES)}, not {sampler!r}")
    return GenerationSettings(width, height, steps, cfg_scale, sampler, _seeds(merged))


def _seeds(values: Mapping[str, Any]) -> tuple[int, ...]:
    if values.get("seeds") is not None:
        seeds = values["seeds"]
        if not isinstance(seeds, list | tuple) or not seeds:
            raise InvalidJob("seeds: must be a non-empty list of integers")
        check_int("count", len(seeds), COUNT_RANGE)
        return tuple(check_int(f"seeds[{i}]", s, SEED_RANGE) for i, s in enumerate(seeds))
    count = check_int("count", values.get("count", 1), COUNT_RANGE)
    seed = values.get("seed")
    base = (
        secrets.randbelow(SEED_RANGE[1] + 1)
        if seed is None or seed == -1
        else check_int("seed", seed, SEED_RANGE)
    )
    # AUTOMATIC1111's convention: image i of a batch uses seed + i.
    return tuple((base + i) % (SEED_RANGE[1] + 1) for i in range(count))
