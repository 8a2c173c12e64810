"""`generate_image`: illustrate a scene (or a prompt) with Stable Diffusion and LoRA styles.

Metadata (one of scene_id / prompt, or a job whose entity is the scene):

    scene_id, prompt, negative_prompt, preset (id or name), provider, model,
    loras [{name | lora_model_id, strength}] or ["NAME:STRENGTH"], story_styles (default true),
    seed | seeds, steps, cfg | cfg_scale, sampler, size 'WxH' | width + height, count, branch_id,
    regenerate_below (0-1: an image whose quality score is lower is drawn again with a new seed),
    max_regenerations (1-3 tries per image; default 1 when regenerate_below is set)

The settings are checked here for their ranges; the model's and the preset's defaults come in at run
time (`generation.params.validate_settings`), with the same checks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs.base import READ, WRITE, JobSpec, Ref

STEPS_RANGE = (1, 150)
CFG_SCALE_RANGE = (0.0, 30.0)
SIZE_RANGE_PX = (64, 2048)
SIZE_MULTIPLE_PX = 8
COUNT_RANGE = (1, 8)
SEED_RANGE = (0, 2**32 - 1)
STRENGTH_RANGE = (0.0, 2.0)
MAX_LORAS = 5
MAX_PROMPT_CHARS = 4000
MAX_NAME_CHARS = 200
# AUTOMATIC1111's sampler names (generation.samplers maps each to a diffusers scheduler).
SAMPLER_NAMES = ("Euler", "Euler a", "DDIM", "PNDM", "LMS", "DPM++ 2M", "DPM++ 2M Karras", "UniPC")
QUALITY_THRESHOLD_RANGE = (0.0, 1.0)  # image quality scores (generation.image_quality) are 0-1
MAX_REGENERATIONS_RANGE = (1, 3)  # bounded: each try costs a full generation
SETTING_KEYS = ("seed", "seeds", "steps", "cfg", "cfg_scale", "sampler", "size", "width", "height", "count")

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"\S")]


class JobLora(JobSpec):
    """A LoRA as the job names it: a lora_models id, or a name (a lora_models row, else a LoRA file)."""

    name: Annotated[Name | None, Ref("lora")] = None
    lora_model_id: Annotated[uuid.UUID | None, Ref("lora")] = None
    strength: float | None = Field(
        default=None, ge=STRENGTH_RANGE[0], le=STRENGTH_RANGE[1], allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """'NAME:STRENGTH' or 'NAME'; `id` is another spelling of `lora_model_id`."""
        if isinstance(value, str):
            name, sep, raw = value.rpartition(":")
            if not sep:
                return {"name": value}
            try:
                return {"name": name, "strength": float(raw)}
            except ValueError:
                raise ValueError(f"strength must be a number, not {raw!r}") from None
        if isinstance(value, dict) and "id" in value:
            value = dict(value)
            if "lora_model_id" in value:
                raise ValueError("give lora_model_id or id, not both")
            value["lora_model_id"] = value.pop("id")
        return value

    @model_validator(mode="after")
    def _named(self) -> JobLora:
        if self.name is None and self.lora_model_id is None:
            raise ValueError("needs a name or a lora_model_id")
        return self


class GenerateImageSpec(JobSpec):
    scene_id: Annotated[uuid.UUID | None, Ref("scene", WRITE)] = None
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, pattern=r"\S")
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    preset: Annotated[Name | None, Ref("preset")] = None
    provider: Name | None = None
    model: Annotated[Name | None, Ref("model")] = None
    loras: list[JobLora] = Field(default_factory=list, max_length=MAX_LORAS)
    story_styles: bool = True
    branch_id: Annotated[uuid.UUID | None, Ref("branch", READ)] = None
    # Settings: checked by `check_settings` (messages name the field and its range).
    seed: Any = None
    seeds: Any = None
    steps: Any = None
    cfg: Any = None
    cfg_scale: Any = None
    sampler: Any = None
    size: Any = None
    width: Any = None
    height: Any = None
    count: Any = None
    # Quality: draw again (new seed) an image scoring below the threshold, at most max_regenerations times
    regenerate_below: Any = None
    max_regenerations: Any = None

    @model_validator(mode="before")
    @classmethod
    def _lora_tags(cls, value: Any) -> Any:
        """AUTOMATIC1111's `<lora:NAME:WEIGHT>` tags: taken out of the prompt (the text encoder never sees
        them) and added to `loras`, so that intake checks each name like any other LoRA."""
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("prompt"), str)
            or "<lora" not in value["prompt"]
        ):
            return value
        prompt, tagged = split_lora_tags(value["prompt"])
        loras = list(value.get("loras") or [])
        if not isinstance(value.get("loras", []), list):
            return value  # the field's own validation says what is wrong
        named = {lo.get("name") if isinstance(lo, dict) else str(lo).rpartition(":")[0] or lo for lo in loras}
        loras += [{"name": name, "strength": weight} for name, weight in tagged if name not in named]
        if len(loras) > MAX_LORAS:
            raise InvalidJob(
                f"prompt: at most {MAX_LORAS} LoRAs per job (tags and loras together), not {len(loras)}"
            )
        return {**value, "prompt": prompt, "loras": loras}

    @field_validator("preset", "provider", "model", mode="after")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> GenerateImageSpec:
        if self.scene_id is not None and self.prompt is not None:
            raise InvalidJob("prompt: give either scene_id or prompt, not both")
        check_settings({k: getattr(self, k) for k in SETTING_KEYS if getattr(self, k) is not None})
        self.settings  # noqa: B018 — refuses cfg and cfg_scale together
        self.regeneration  # noqa: B018 — range checks
        return self

    @property
    def regeneration(self) -> tuple[float, int] | None:
        """(threshold, tries per image) when the job asks for re-generation of weak images."""
        if self.regenerate_below is None:
            if self.max_regenerations is not None:
                raise InvalidJob(
                    "max_regenerations: applies only with regenerate_below (a quality score from "
                    f"{QUALITY_THRESHOLD_RANGE[0]} to {QUALITY_THRESHOLD_RANGE[1]}, e.g. 0.5)"
                )
            return None
        threshold = check_float("regenerate_below", self.regenerate_below, QUALITY_THRESHOLD_RANGE)
        tries = (
            1
            if self.max_regenerations is None
            else check_int("max_regenerations", self.max_regenerations, MAX_REGENERATIONS_RANGE)
        )
        return threshold, tries

    @property
    def settings(self) -> dict[str, Any]:
        """The settings the job set (cfg spelled cfg_scale; seed -1, AUTOMATIC1111's random, dropped)."""
        values = {k: getattr(self, k) for k in SETTING_KEYS if getattr(self, k) is not None}
        if "cfg" in values:
            if "cfg_scale" in values:
                raise InvalidJob("cfg: give cfg or cfg_scale, not both")
            values["cfg_scale"] = values.pop("cfg")
        if values.get("seed") == -1:
            del values["seed"]
        return values

    @property
    def image_count(self) -> int:
        seeds = self.seeds
        return len(seeds) if isinstance(seeds, list) else int(self.count or 1)

    def usage(self) -> dict[str, int]:
        return {"images": self.image_count}

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("scene", self.scene_id) if self.scene_id is not None else None


# -- checks shared with generation.params (which merges the model's and the preset's defaults) -----


def check_settings(values: dict[str, Any]) -> None:
    """Ranges of the settings a job or a preset sets; InvalidJob naming the field otherwise."""
    if "cfg" in values:
        check_float("cfg", values["cfg"], CFG_SCALE_RANGE)
    if "size" in values and ("width" in values or "height" in values):
        raise InvalidJob("size: give size or width and height, not both")
    if "seed" in values and "seeds" in values and values["seed"] not in (None, -1):
        raise InvalidJob("seed: give seed (and count) or seeds, not both")
    if values.get("size") is not None:
        parse_size(values["size"])
    for key in ("width", "height"):
        if values.get(key) is not None:
            check_size(key, values[key])
    if values.get("steps") is not None:
        check_int("steps", values["steps"], STEPS_RANGE)
    if values.get("cfg_scale") is not None:
        check_float("cfg_scale", values["cfg_scale"], CFG_SCALE_RANGE)
    if values.get("sampler") is not None and values["sampler"] not in SAMPLER_NAMES:
        raise InvalidJob(f"sampler: must be one of {', '.join(SAMPLER_NAMES)}, not {values['sampler']!r}")
    if values.get("count") is not None:
        check_int("count", values["count"], COUNT_RANGE)
    if values.get("seed") not in (None, -1):
        check_int("seed", values["seed"], SEED_RANGE)
    if values.get("seeds") is not None:
        seeds = values["seeds"]
        if not isinstance(seeds, list | tuple) or not seeds:
            raise InvalidJob("seeds: must be a non-empty list of integers")
        check_int("count", len(seeds), COUNT_RANGE)
        for i, s in enumerate(seeds):
            check_int(f"seeds[{i}]", s, SEED_RANGE)


def check_int(field_name: str, value: Any, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InvalidJob(f"{field_name}: must be an integer from {lo} to {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidJob(f"{field_name}: must be from {lo} to {hi}, not {value}")
    return int(value)


def check_float(field_name: str, value: Any, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidJob(f"{field_name}: must be a number from {lo} to {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidJob(f"{field_name}: must be from {lo} to {hi}, not {value}")
    return float(value)


def check_size(field_name: str, value: Any) -> int:
    size = check_int(field_name, value, SIZE_RANGE_PX)
    if size % SIZE_MULTIPLE_PX:
        lo, hi = SIZE_RANGE_PX
        raise InvalidJob(
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
    raise InvalidJob(f"size: must be 'WIDTHxHEIGHT' (e.g. '512x512'), not {value!r}")


# -- AUTOMATIC1111's LoRA tags -------------------------------------------------------------------

_LORA_TAG = re.compile(r"<lora:([^<>]*)>")
_LORA_OPEN = re.compile(r"<lora\b", re.IGNORECASE)


def split_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its `<lora:NAME:WEIGHT>` tags (WEIGHT optional, 1 by default, as in
    AUTOMATIC1111), and the tags' (name, weight) in order. A malformed tag is an InvalidJob naming it."""
    tags: list[tuple[str, float]] = []
    for match in _LORA_TAG.finditer(prompt):
        inner = match.group(1)
        name, sep, raw = inner.rpartition(":")
        if not sep:
            name, raw = inner, "1"
        name = name.strip()
        try:
            weight = float(raw)
        except ValueError:
            raise InvalidJob(
                f"prompt: malformed tag {match.group(0)!r}: write <lora:NAME:WEIGHT> with a number "
                f"as WEIGHT, not {raw!r}"
            ) from None
        if not name:
            raise InvalidJob(f"prompt: malformed tag {match.group(0)!r}: the LoRA's name is missing")
        if weight != weight or not STRENGTH_RANGE[0] <= weight <= STRENGTH_RANGE[1]:
            raise InvalidJob(
                f"prompt: tag {match.group(0)!r}: the weight must be from {STRENGTH_RANGE[0]} "
                f"to {STRENGTH_RANGE[1]}, not {raw}"
            )
        tags.append((name, weight))
    rest = _LORA_TAG.sub("", prompt)
    left = _LORA_OPEN.search(rest)
    if left is not None:
        raise InvalidJob(
            f"prompt: malformed tag {rest[left.start() : left.start() + 40]!r}: a LoRA tag is "
            "<lora:NAME:WEIGHT>, closed with '>'"
        )
    cleaned = re.sub(r"[ \t]{2,}", " ", rest).strip().strip(",").strip()
    return cleaned, tags
