"""What a text analyzer returns for a chapter, and the provider interface (the seed's
`AIModelProvider.processScene`, text side). Plain dataclasses: the handler writes them to the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

BREAK_KINDS = ("start", "explicit", "time", "place")
TRANSITION_TYPES = ("gradual", "sudden", "triggered")


@dataclass(frozen=True)
class KnownCharacter:
    """A character the story has already (from earlier chapters): names found later merge into it."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass
class EmotionReading:
    character: str  # canonical name
    primary_emotion: str
    intensity: float  # 0-1
    secondary_emotions: dict[str, float] = field(default_factory=dict)
    triggers: list[str] = field(default_factory=list)
    facial_expression_notes: str | None = None
    body_language_notes: str | None = None


@dataclass
class SceneAnalysis:
    number: int
    start: int  # character offsets into the chapter text: text[start:end] is the scene
    end: int
    text: str
    title: str
    summary: str
    emotional_tone: str
    location: str | None = None
    characters: list[str] = field(default_factory=list)  # canonical names, in order of appearance
    emotions: list[EmotionReading] = field(default_factory=list)
    break_kind: str = "start"  # why the scene starts here
    # custom field values an analyzer found: {"scene": {field: value}, "characters": {name: {field: value}}}
    custom_values: dict[str, Any] = field(default_factory=dict)


@dataclass
class CharacterInfo:
    name: str
    aliases: list[str] = field(default_factory=list)
    appearance: str | None = None
    mentions: int = 0


@dataclass
class LocationInfo:
    name: str
    description: str | None = None


@dataclass
class ChapterAnalysis:
    analyzer: str
    scenes: list[SceneAnalysis]
    characters: list[CharacterInfo]
    locations: list[LocationInfo]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProcessingOptions:
    """What the caller knows: the story's characters so far, the custom fields to fill."""

    known_characters: Sequence[KnownCharacter] = ()
    custom_fields: Sequence[dict[str, Any]] = ()  # {"name", "type", "applies_to"}
    max_scenes: int = 200


class TextAnalyzer(Protocol):
    """A text provider: `name`, `version`, `capabilities`, and the seed's processScene on a chapter."""

    name: str
    version: str
    capabilities: tuple[str, ...]

    def analyze_chapter(self, text: str, options: ProcessingOptions) -> ChapterAnalysis: ...

    def process_scene(self, text: str, options: ProcessingOptions) -> SceneAnalysis: ...
