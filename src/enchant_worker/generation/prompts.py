"""Prompts from a scene: pure functions over plain dataclasses (the database is read elsewhere).

The builder is deterministic and explains itself: every part of the prompt records where it came from,
and the job result keeps that list.

Order of the positive prompt: LoRA trigger words, the scene (summary, else text), each character
(appearance, then emotion modifiers), the location, the preset's style modifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from enchant_worker.generation.errors import InvalidGeneration

DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, worst quality, text, watermark"
SEPARATOR = ", "
MAX_SCENE_WORDS = 60  # the text encoder sees 75 tokens: a long scene text is cut to its opening words


@dataclass(frozen=True)
class CharacterEmotion:
    """A `character_emotions` row."""

    primary_emotion: str
    emotion_intensity: float | None = None
    secondary_emotions: Mapping[str, float] | None = None
    facial_expression_notes: str | None = None
    body_language_notes: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class BranchCharacterState:
    """A `branch_character_states` row: the character's look in a branch from a chapter on."""

    branch_id: str
    chapter_number: int
    appearance_description: str
    emotional_state: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class EmotionTransition:
    """An `emotion_transitions` row into this scene: a `sudden` or `triggered` change shows in the face."""

    transition_type: str
    from_emotion: str | None = None
    cause: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Detail:
    """A custom field value marked `prompt: true` ("cloak colour: red")."""

    field: str
    value: str
    id: str | None = None  # the custom field's id


@dataclass(frozen=True)
class Character:
    name: str
    appearance: str | None = None
    emotion: CharacterEmotion | None = None
    branch_state: BranchCharacterState | None = None  # overrides `appearance` when set
    id: str | None = None
    transition: EmotionTransition | None = None
    details: Sequence[Detail] = ()


@dataclass(frozen=True)
class Location:
    name: str
    description: str | None = None
    id: str | None = None
    details: Sequence[Detail] = ()


@dataclass(frozen=True)
class Preset:
    """A `generation_presets` row (only what the prompt needs; parameters are merged by the caller)."""

    name: str
    style_modifiers: Sequence[str] = ()
    negative_prompt: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class LoraStyle:
    """A LoRA chosen for the job, with the words that trigger it."""

    name: str
    trigger_words: Sequence[str] = ()
    id: str | None = None


@dataclass(frozen=True)
class Scene:
    id: str | None = None
    text: str | None = None
    summary: str | None = None
    characters: Sequence[Character] = ()
    location: Location | None = None
    details: Sequence[Detail] = ()


@dataclass(frozen=True)
class PromptPart:
    text: str
    source: str  # e.g. "scene.summary", "character_emotions:<id>", "preset:<name>.style_modifiers"


@dataclass(frozen=True)
class BuiltPrompt:
    prompt: str
    negative_prompt: str
    parts: tuple[PromptPart, ...] = field(default=())
    negative_parts: tuple[PromptPart, ...] = field(default=())

    def explain(self) -> dict:
        """JSON-ready account of the prompt, for the job result."""
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "parts": [{"text": p.text, "source": p.source} for p in self.parts],
            "negative_parts": [{"text": p.text, "source": p.source} for p in self.negative_parts],
        }


def emotion_modifiers(emotion: CharacterEmotion) -> list[str]:
    """The seed's `generateEmotionalPromptModifiers`, rule for rule.

    One deliberate reading: a NULL intensity adds no intensity modifier (in the seed's JavaScript
    `null < 0.3` is true and would add 'subtle'; that is an accident of coercion, not a rule).
    """
    modifiers = [f"{emotion.primary_emotion} expression"]
    intensity = emotion.emotion_intensity
    if intensity is not None:
        if intensity > 0.8:
            modifiers += ["intense", "dramatic facial expression"]
        elif intensity < 0.3:
            modifiers += ["subtle", "nuanced expression"]
    for name, value in (emotion.secondary_emotions or {}).items():  # the row's key order
        if value is not None and value > 0.3:
            modifiers.append(f"hints of {name}")
    if emotion.facial_expression_notes:
        modifiers.append(emotion.facial_expression_notes)
    if emotion.body_language_notes:
        modifiers.append(emotion.body_language_notes)
    return modifiers


def _scene_parts(scene: Scene) -> list[PromptPart]:
    ref = f"scenes:{scene.id}" if scene.id else "scene"
    if scene.summary and scene.summary.strip():
        return [PromptPart(_clean(scene.summary), f"{ref}.summary")]
    if scene.text and scene.text.strip():
        words = _clean(scene.text).split(" ")
        return [PromptPart(" ".join(words[:MAX_SCENE_WORDS]), f"{ref}.text")]
    raise InvalidGeneration(f"scene_id: scene {scene.id} is empty: it has neither text nor summary")


def _character_parts(character: Character) -> list[PromptPart]:
    ref = f"characters:{character.id or character.name}"
    parts: list[PromptPart] = []
    state = character.branch_state
    if state is not None:
        source = f"branch_character_states:{state.id or state.branch_id}"
        parts.append(
            PromptPart(
                f"{character.name}, {_clean(state.appearance_description)}",
                f"{source}.appearance_description",
            )
        )
    elif character.appearance:
        parts.append(PromptPart(f"{character.name}, {_clean(character.appearance)}", f"{ref}.appearance"))
    else:
        parts.append(PromptPart(character.name, f"{ref}.name"))
    parts += _detail_parts(character.details)
    if character.emotion is not None:
        source = f"character_emotions:{character.emotion.id or character.name}"
        parts += [PromptPart(_clean(m), source) for m in emotion_modifiers(character.emotion)]
        if character.transition is not None:
            parts += transition_parts(character.transition)
    elif state is not None and state.emotional_state:
        parts.append(
            PromptPart(
                _clean(state.emotional_state),
                f"branch_character_states:{state.id or state.branch_id}.emotional_state",
            )
        )
    return parts


def transition_parts(transition: EmotionTransition) -> list[PromptPart]:
    """A sudden change shows in the expression; a triggered one shows the character reacting."""
    source = f"emotion_transitions:{transition.id or transition.transition_type}"
    if transition.transition_type == "sudden":
        return [PromptPart("sudden change of expression", source), PromptPart("startled", source)]
    if transition.transition_type == "triggered":
        return [PromptPart("visibly reacting", source)]
    return []


def _detail_parts(details: Sequence[Detail]) -> list[PromptPart]:
    return [
        PromptPart(f"{_clean(d.field)}: {_clean(d.value)}", f"custom_fields:{d.id or d.field}")
        for d in details
        if d.value and d.value.strip()
    ]


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(" ,")


def _join(parts: Sequence[PromptPart]) -> str:
    return SEPARATOR.join(p.text for p in parts if p.text)


def _trigger_parts(loras: Sequence[LoraStyle]) -> list[PromptPart]:
    return [
        PromptPart(_clean(w), f"lora_models:{lora.id or lora.name}.trigger_words")
        for lora in loras
        for w in lora.trigger_words
        if w.strip()
    ]


def _style_parts(preset: Preset | None) -> list[PromptPart]:
    if preset is None:
        return []
    return [
        PromptPart(_clean(m), f"generation_presets:{preset.id or preset.name}.style_modifiers")
        for m in preset.style_modifiers
        if m.strip()
    ]


def _negative_parts(preset: Preset | None, negative_prompt: str | None) -> list[PromptPart]:
    if negative_prompt is not None:
        return [PromptPart(_clean(negative_prompt), "job.negative_prompt")] if negative_prompt.strip() else []
    if preset is not None and preset.negative_prompt:
        return [
            PromptPart(
                _clean(preset.negative_prompt),
                f"generation_presets:{preset.id or preset.name}.negative_prompt",
            )
        ]
    return [PromptPart(DEFAULT_NEGATIVE_PROMPT, "default.negative_prompt")]


def build_scene_prompt(
    scene: Scene,
    preset: Preset | None = None,
    loras: Sequence[LoraStyle] = (),
    negative_prompt: str | None = None,
) -> BuiltPrompt:
    """The prompt for a scene. `negative_prompt` (the job's) replaces the preset's or the default one."""
    parts = _trigger_parts(loras) + _scene_parts(scene) + _detail_parts(scene.details)
    for character in scene.characters:
        parts += _character_parts(character)
    if scene.location is not None:
        ref = f"locations:{scene.location.id or scene.location.name}"
        text = scene.location.name + (
            f", {_clean(scene.location.description)}" if scene.location.description else ""
        )
        parts.append(PromptPart(text, ref))
        parts += _detail_parts(scene.location.details)
    parts += _style_parts(preset)
    negative = _negative_parts(preset, negative_prompt)
    return BuiltPrompt(_join(parts), _join(negative), tuple(parts), tuple(negative))


def build_raw_prompt(
    prompt: str,
    preset: Preset | None = None,
    loras: Sequence[LoraStyle] = (),
    negative_prompt: str | None = None,
) -> BuiltPrompt:
    """The prompt for a job that gives its own text: trigger words, the text, the preset's style."""
    if not prompt or not prompt.strip():
        raise InvalidGeneration("prompt: must not be empty")
    text = _clean(prompt)
    # A prompt read back from one of our PNGs already starts with the trigger words and ends with the
    # preset's style: resubmitting it must not add them twice (the same prompt, the same pixels).
    given = text.split(SEPARATOR)
    parts = [p for p in _trigger_parts(loras) if p.text not in given]
    parts += [PromptPart(text, "job.prompt")]
    parts += [p for p in _style_parts(preset) if p.text not in given]
    negative = _negative_parts(preset, negative_prompt)
    return BuiltPrompt(_join(parts), _join(negative), tuple(parts), tuple(negative))
