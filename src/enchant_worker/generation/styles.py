"""Which LoRA styles a scene gets from its story (`story_lora_settings`), with clamped strengths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_STRENGTH_RANGE = {"min": 0.5, "max": 1.0}  # the seed's column default


@dataclass(frozen=True)
class LoraModel:
    """A `lora_models` row."""

    id: str
    name: str
    model_file_url: str
    trigger_words: Sequence[str] = ()
    strength_range: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STRENGTH_RANGE))
    status: str = "ready"


@dataclass(frozen=True)
class StoryLoraSetting:
    """A `story_lora_settings` row joined with its LoRA."""

    lora: LoraModel
    strength: float = 0.8
    apply_to_scenes: Sequence[str] = ("all",)
    id: str | None = None


@dataclass(frozen=True)
class ChosenLora:
    lora: LoraModel
    strength: float
    source: str
    note: str | None = None  # e.g. "strength 1.3 clamped to 1.0"


def clamp_strength(strength: float, strength_range: Mapping[str, float] | None) -> float:
    bounds = {**DEFAULT_STRENGTH_RANGE, **(strength_range or {})}
    return min(max(strength, float(bounds["min"])), float(bounds["max"]))


def story_loras_for_scene(
    settings: Sequence[StoryLoraSetting], scene_id: str | None
) -> tuple[list[ChosenLora], list[str]]:
    """The story's styles that apply to `scene_id` ('all' or listed ids), and warnings for skipped ones.

    A style whose LoRA is not `ready` (still training, failed) is skipped with a warning: the scene is
    still illustrated. Strengths are clamped into the LoRA's `strength_range`.
    """
    chosen: list[ChosenLora] = []
    warnings: list[str] = []
    for setting in settings:
        targets = {str(s) for s in (setting.apply_to_scenes or ("all",))}
        if "all" not in targets and (scene_id is None or str(scene_id) not in targets):
            continue
        if setting.lora.status != "ready":
            warnings.append(f"story style {setting.lora.name!r} skipped: its LoRA is {setting.lora.status}")
            continue
        strength = clamp_strength(float(setting.strength), setting.lora.strength_range)
        note = (
            None
            if strength == float(setting.strength)
            else f"strength {float(setting.strength)} clamped to {strength}"
        )
        chosen.append(
            ChosenLora(setting.lora, strength, f"story_lora_settings:{setting.id or setting.lora.id}", note)
        )
    return chosen, warnings
