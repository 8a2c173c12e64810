"""The seed's ContentSuggestionEngine (section 9) for `builtin`: suggestions from the scores' evidence.

- suggest_scenes(chapter): SceneSuggestions of the seed's four types: `missing_transition` (the place
  changes between two scenes with no time or place opening), `emotional_beat` (a scene with little
  emotional impact), `character_moment` (a recurring character with no emotion read in the chapter),
  `world_building` (a scene with little visual detail)
- suggest_character_development(profile): a character who never changes, never reflects, or appears once
- suggest_plot_enhancements(story): a flat tension curve, a climax too early, uneven chapters

Every suggestion carries `confidence` (how sure the rule is, 0-1) and `reasoning` (the measurements)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from enchant_worker.text import lexicon as lx
from enchant_worker.text.builtin import split_sentences
from enchant_worker.text.pacing import PacingAnalysis
from enchant_worker.text.quality import CharacterProfile, QualityScore
from enchant_worker.text.story_input import ChapterInput

SCENE_TYPES = ("missing_transition", "emotional_beat", "character_moment", "world_building")
LOW_IMPACT = 0.3
LOW_VISUAL = 0.35
MIN_WORDS_FOR_SUGGESTION = 40  # shorter scenes are not worth a suggestion of their own
LATE_CLIMAX_POSITION = 0.5  # a climax before this share of the story comes early
_TRANSITION_OPENING = re.compile(r"^[\"'“‘(]*(?:" + "|".join(lx.TIME_SHIFT_OPENINGS) + r")\b", re.IGNORECASE)


@dataclass
class SceneSuggestion:
    type: str
    description: str
    suggested_content: str
    confidence: float
    reasoning: list[str]
    chapter: int
    scene: int
    scene_id: str | None = None


@dataclass
class CharacterSuggestion:
    character: str
    type: str  # "emotional_arc" | "introspection" | "recurrence"
    description: str
    suggested_content: str
    confidence: float
    reasoning: list[str]
    scenes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PlotSuggestion:
    type: str  # "raise_stakes" | "late_climax" | "rebalance_chapters"
    description: str
    suggested_content: str
    confidence: float
    reasoning: list[str]
    chapters: list[int] = field(default_factory=list)


def as_dicts(items) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]


def suggest_scenes(
    chapter: ChapterInput, scores: list[QualityScore], profiles: dict[str, CharacterProfile]
) -> list[SceneSuggestion]:
    """suggestScenes(chapter): `scores` are the chapter's scenes' QualityScores, in order."""
    out: list[SceneSuggestion] = []
    for index, (scene, score) in enumerate(zip(chapter.scenes, scores, strict=True)):
        words = score.evidence["pacing"]["words"]
        where: dict[str, Any] = dict(chapter=chapter.number, scene=scene.number, scene_id=scene.id)
        lead = scene.characters[0] if scene.characters else "the point-of-view character"
        if index > 0:
            before = chapter.scenes[index - 1]
            first = (split_sentences(scene.text) or [""])[0]
            if (
                before.location
                and scene.location
                and before.location != scene.location
                and not _TRANSITION_OPENING.match(first)
                and scene.location.removeprefix("the ") not in first
            ):
                out.append(
                    SceneSuggestion(
                        "missing_transition",
                        f"Scene {scene.number} moves from {before.location} to {scene.location} "
                        "without saying how or when",
                        f'Open with a line that carries the reader over, e.g. "Later, at '
                        f'{scene.location.removeprefix("the ")}, …"',
                        0.6,
                        [
                            f"scene {before.number} is set at {before.location}, scene {scene.number} at {scene.location}",
                            f"scene {scene.number} opens: {first[:80]!r}",
                        ],
                        **where,
                    )
                )
        if words < MIN_WORDS_FOR_SUGGESTION:
            continue
        impact = score.emotional_impact
        if impact < LOW_IMPACT:
            out.append(
                SceneSuggestion(
                    "emotional_beat",
                    f"Scene {scene.number} carries little emotion",
                    f"Show how {lead} reacts: a "
                    "physical sign (hands, breath, voice) and a thought that names what is at stake for them",
                    round(min(0.9, 0.5 + (LOW_IMPACT - impact)), 2),
                    [
                        f"emotional_impact {impact:.2f} < {LOW_IMPACT}",
                        score.evidence["emotional_impact"]["why"],
                    ],
                    **where,
                )
            )
        if score.visual_potential < LOW_VISUAL:
            setting = scene.location or "the setting"
            out.append(
                SceneSuggestion(
                    "world_building",
                    f"Scene {scene.number} gives the eye little to see",
                    f"Describe {setting}: the light, one colour, one texture, one sound",
                    round(min(0.9, 0.5 + (LOW_VISUAL - score.visual_potential)), 2),
                    [
                        f"visual_potential {score.visual_potential:.2f} < {LOW_VISUAL}",
                        score.evidence["visual_potential"]["why"],
                    ],
                    **where,
                )
            )
    # character_moment: a character seen in several of the chapter's scenes whose feelings are never read
    seen: dict[str, list] = {}
    for scene in chapter.scenes:
        for name in scene.characters:
            seen.setdefault(name, []).append(scene)
    for name, scenes in seen.items():
        read = [s for s in scenes if any(e.character == name for e in s.emotions)]
        if len(scenes) >= 2 and not read:
            profile = profiles.get(name)
            out.append(
                SceneSuggestion(
                    "character_moment",
                    f"{name} appears in {len(scenes)} scenes but we never learn how they feel",
                    f"Give {name} a moment alone in scene {scenes[-1].number}: what they notice, what they want, what "
                    "they fear",
                    0.55,
                    [
                        f"{name} is in scenes {', '.join(str(s.number) for s in scenes)}; no emotion read for them",
                        *([profile.evidence["why"]] if profile else []),
                    ],
                    chapter=chapter.number,
                    scene=scenes[-1].number,
                    scene_id=scenes[-1].id,
                )
            )
    return out


def suggest_character_development(profile: CharacterProfile) -> list[CharacterSuggestion]:
    """suggestCharacterDevelopment(character)."""
    scenes = [
        {"chapter": c, "scene": n, "scene_id": i}
        for (c, n), i in zip(profile.scenes, profile.scene_ids, strict=True)
    ]
    out = []
    read = [e for e in profile.emotions if e]
    if len(profile.scenes) > 1 and profile.changes == 0:
        feeling = read[0] if read else "no readable emotion"
        out.append(
            CharacterSuggestion(
                profile.name,
                "emotional_arc",
                f"{profile.name} feels the same in every scene ({feeling})",
                f"Let an event change {profile.name}: a scene where {feeling} gives way to something else, and why",
                0.7,
                [profile.evidence["why"]],
                scenes,
            )
        )
    if profile.introspection == 0:
        out.append(
            CharacterSuggestion(
                profile.name,
                "introspection",
                f"We never hear {profile.name} think",
                f"Add a passage of {profile.name}'s thoughts: a memory, a doubt, a decision",
                0.6,
                [profile.evidence["why"]],
                scenes,
            )
        )
    if len(profile.scenes) == 1:
        out.append(
            CharacterSuggestion(
                profile.name,
                "recurrence",
                f"{profile.name} appears once",
                f"Bring {profile.name} back later, changed by what happened, or fold them into another character",
                0.4,
                [profile.evidence["why"]],
                scenes,
            )
        )
    return out


def suggest_plot_enhancements(pacing: PacingAnalysis) -> list[PlotSuggestion]:
    """suggestPlotEnhancements(story), from its pacing analysis."""
    out = []
    if pacing.flat_tension:
        out.append(
            PlotSuggestion(
                "raise_stakes",
                "The tension hardly moves from scene to scene",
                "Add a turning point: a threat, a loss or a discovery that raises the stakes before the end",
                0.7,
                [f"tension range {pacing.tension_range:.2f} < flat threshold"],
            )
        )
    if (
        pacing.climax is not None
        and len(pacing.tension_curve) >= 4
        and pacing.climax["position"] < LATE_CLIMAX_POSITION
    ):
        out.append(
            PlotSuggestion(
                "late_climax",
                "The most tense scene comes early and the rest falls away",
                "Build towards a later peak: hold back a revelation or a confrontation for the last third",
                0.5,
                [
                    f"peak tension {pacing.climax['tension']:.2f} at chapter {pacing.climax['chapter']} scene "
                    f"{pacing.climax['scene']} ({round(100 * pacing.climax['position'])}% through)"
                ],
                [pacing.climax["chapter"]],
            )
        )
    if pacing.pacing_inconsistencies:
        out.append(
            PlotSuggestion(
                "rebalance_chapters",
                "Chapter lengths break the story's rhythm",
                "Split the long chapters at a scene break, or merge the short ones into their neighbours",
                0.75,
                [i["reason"] for i in pacing.pacing_inconsistencies],
                [i["chapter"] for i in pacing.pacing_inconsistencies],
            )
        )
    return out
