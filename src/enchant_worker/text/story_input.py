"""What story analysis reads: chapters, their scenes' text, characters present and their emotions. Built
from the database by the `analyze_story` handler, or from plain text with `builtin` (benchmark, tests,
chapters never extracted). Plain dataclasses, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

ANALYSIS_VERSION = "1"  # bump when a score's formula changes: stored results of older versions are recomputed


@dataclass
class Feeling:
    character: str
    emotion: str
    intensity: float


@dataclass
class SceneInput:
    chapter: int  # chapter number
    number: int  # scene number in the chapter
    text: str
    characters: list[str] = field(default_factory=list)
    emotions: list[Feeling] = field(default_factory=list)
    location: str | None = None
    id: str | None = None  # the scenes row; None for a scene found only in memory


@dataclass
class ChapterInput:
    number: int
    text: str
    title: str | None = None
    scenes: list[SceneInput] = field(default_factory=list)
    id: str | None = None
    extracted: bool = True  # False: scenes found in memory by builtin (no scenes rows yet)


@dataclass
class StoryInput:
    title: str
    chapters: list[ChapterInput] = field(default_factory=list)

    @property
    def scenes(self) -> list[SceneInput]:
        return [s for c in self.chapters for s in c.scenes]

    def content_hash(self, analyzer: str) -> str:
        """What the analysis is computed from: a result stored under the same hash is still valid."""
        return _digest({"version": ANALYSIS_VERSION, "analyzer": analyzer, "story": asdict(self)})


def scene_hash(scene: SceneInput, analyzer: str) -> str:
    return _digest({"version": ANALYSIS_VERSION, "analyzer": analyzer, "scene": asdict(scene)})


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def chapter_from_text(number: int, text: str, title: str | None = None, known=()) -> ChapterInput:
    """A chapter's scenes found by `builtin` in memory (no database)."""
    from enchant_worker.text.analysis import ProcessingOptions
    from enchant_worker.text.builtin import BuiltinAnalyzer

    analysis = BuiltinAnalyzer().analyze_chapter(text, ProcessingOptions(known_characters=tuple(known)))
    scenes = [
        SceneInput(
            number,
            s.number,
            s.text,
            list(s.characters),
            [Feeling(e.character, e.primary_emotion, float(e.intensity)) for e in s.emotions],
            s.location,
        )
        for s in analysis.scenes
    ]
    return ChapterInput(number, text, title, scenes, extracted=False)


def story_from_texts(title: str, chapters: list[str]) -> StoryInput:
    """A story of plain chapter texts, each split into scenes by `builtin` (names merge across chapters)."""
    from enchant_worker.text.analysis import KnownCharacter

    known: dict[str, KnownCharacter] = {}
    result = StoryInput(title)
    for number, text in enumerate(chapters, start=1):
        chapter = chapter_from_text(number, text, known=known.values())
        for scene in chapter.scenes:
            for name in scene.characters:
                known.setdefault(name, KnownCharacter(name))
        result.chapters.append(chapter)
    return result
