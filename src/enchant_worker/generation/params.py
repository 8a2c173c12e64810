"""Generation parameters: validated up front; every error names the field and the allowed range."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enchant_worker.generation.adapters import LoraRequest
from enchant_worker.generation.errors import InvalidGeneration
from enchant_worker.generation.samplers import SAMPLERS

STEPS_RANGE = (1, 150)
CFG_SCALE_RANGE = (0.0, 30.0)
SIZE_RANGE_PX = (64, 2048)
SIZE_MULTIPLE_PX = 8
COUNT_RANGE = (1, 8)
SEED_RANGE = (0, 2**32 - 1)
STRENGTH_RANGE = (0.0, 2.0)
MAX_LORAS = 5
MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA as a job names it; the caller resolves the name to a file."""

    name: str
    strength: float


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


def check_int(field_name: str, value: Any, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InvalidGeneration(f"{field_name}: must be an integer from {lo} to {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidGeneration(f"{field_name}: must be from {lo} to {hi}, not {value}")
    return int(value)


def check_float(field_name: str, value: Any, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidGeneration(f"{field_name}: must be a number from {lo} to {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidGeneration(f"{field_name}: must be from {lo} to {hi}, not {value}")
    return float(value)


def check_size(field_name: str, value: Any) -> int:
    size = check_int(field_name, value, SIZE_RANGE_PX)
    if size % SIZE_MULTIPLE_PX:
        lo, hi = SIZE_RANGE_PX
        raise InvalidGeneration(
            f"{field_name}: must be a multiple of {SIZE_MULTIPLE_PX} from {lo} to {hi}, not {size}"
        )
    return size


def parse_size(value: Any) -> tuple[int, int]:
    """'512x768' or [512, 768] → (width, height)."""
    if isinstance(value, str) and "x" in value.lower():
        parts = value.lower().split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            return check_size("size", int(parts[0])), check_size("size", int(parts[1]))
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return check_size("size", value[0]), check_size("size", value[1])
    raise InvalidGeneration(f"size: must be 'WIDTHxHEIGHT' (e.g. '512x512'), not {value!r}")


def check_prompt(field_name: str, value: Any, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidGeneration(f"{field_name}: must be a non-empty text")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidGeneration(
            f"{field_name}: must be at most {MAX_PROMPT_CHARS} characters, not {len(value)}"
        )
    return value


def parse_lora_specs(value: Any) -> tuple[LoraSpec, ...]:
    """`[{"name": "ink", "strength": 0.8}, "water:0.5", "plain"]` → LoraSpecs (strength 1.0 by default)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidGeneration("loras: must be a list of {name, strength} or 'NAME:STRENGTH' items")
    if len(value) > MAX_LORAS:
        raise InvalidGeneration(f"loras: at most {MAX_LORAS} LoRAs per image, not {len(value)}")
    specs = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            name, _, strength = item.rpartition(":") if ":" in item else (item, "", "1.0")
            try:
                strength_value: Any = float(strength)
            except ValueError:
                raise InvalidGeneration(f"loras[{i}].strength: must be a number, not {strength!r}") from None
        elif isinstance(item, Mapping) and isinstance(item.get("name") or item.get("id"), str):
            name, strength_value = item.get("name") or item["id"], item.get("strength", 1.0)
        else:
            raise InvalidGeneration(
                f"loras[{i}]: must be {{name, strength}} or 'NAME:STRENGTH', not {item!r}"
            )
        if not name.strip():
            raise InvalidGeneration(f"loras[{i}].name: must not be empty")
        specs.append(
            LoraSpec(name.strip(), check_float(f"loras[{i}].strength", strength_value, STRENGTH_RANGE))
        )
    return tuple(specs)


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
    if sampler not in SAMPLERS:
        raise InvalidGeneration(f"sampler: must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    return GenerationSettings(width, height, steps, cfg_scale, sampler, _seeds(merged))


def _seeds(values: Mapping[str, Any]) -> tuple[int, ...]:
    if values.get("seeds") is not None:
        seeds = values["seeds"]
        if not isinstance(seeds, list | tuple) or not seeds:
            raise InvalidGeneration("seeds: must be a non-empty list of integers")
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
