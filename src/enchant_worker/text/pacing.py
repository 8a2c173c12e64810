"""`analyzeNarrativePacing` of the seed (section 9): chapter and scene lengths, a tension curve from the
scenes' emotions, and `pacing_inconsistencies`: the chapters whose length is far from the story's rhythm
(more than `UNEVEN_RATIO` times, or less than 1/`UNEVEN_RATIO` of, the median chapter)."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from enchant_worker.text.quality import SceneFeatures
from enchant_worker.text.story_input import StoryInput

UNEVEN_RATIO = 2.5  # a chapter this many times longer (or shorter) than the median breaks the rhythm
FLAT_TENSION_RANGE = 0.15  # a tension curve whose range is under this is flat
TENSE = {
    "fear": 1.0,
    "anger": 0.9,
    "surprise": 0.7,
    "disgust": 0.6,
    "sadness": 0.5,
    "determination": 0.5,
    "love": 0.25,
    "hope": 0.2,
    "joy": 0.15,
    "relief": 0.1,
    "calm": 0.0,
}


@dataclass
class PacingAnalysis:
    chapter_words: list[dict[str, Any]]  # {"chapter", "words", "ratio"}
    scene_words: list[dict[str, Any]]  # {"chapter", "scene", "words"}
    tension_curve: list[dict[str, Any]]  # {"chapter", "scene", "tension", "emotion"}
    pacing_inconsistencies: list[dict[str, Any]]  # {"chapter", "words", "ratio", "reason"}
    median_chapter_words: float
    chapter_balance: float  # 1: even chapters; falls as chapters stray from the median
    tension_range: float
    flat_tension: bool
    climax: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scene_tension(
    emotions: dict[str, int], strongest: float, cue_count: int, words: int
) -> tuple[float, str | None]:
    """0-1: how tense the scene reads: the tenseness of its emotions weighted by their cues, scaled by how
    dense and strong they are."""
    if not emotions:
        return 0.0, None
    total = sum(emotions.values())
    kind = sum(TENSE.get(e, 0.3) * n for e, n in emotions.items()) / total
    density = min(1.0, 100.0 * cue_count / max(1, words) / 2.0)
    top = max(emotions, key=lambda e: emotions[e])
    return round(kind * (0.5 * density + 0.5 * max(strongest, density)), 3), top


def analyze_pacing(story: StoryInput, scene_features: list[SceneFeatures]) -> PacingAnalysis:
    notes: list[str] = []
    chapter_words: list[dict[str, Any]] = [
        {"chapter": c.number, "words": sum(1 for _ in c.text.split())} for c in story.chapters
    ]
    median: float = statistics.median([c["words"] for c in chapter_words]) if chapter_words else 0.0
    inconsistencies = []
    deviations = []
    for row in chapter_words:
        ratio = row["words"] / median if median else 1.0
        row["ratio"] = round(ratio, 2)
        deviations.append(abs(math.log(max(ratio, 1e-3))))
        if len(chapter_words) > 1 and (ratio > UNEVEN_RATIO or ratio < 1 / UNEVEN_RATIO):
            reason = (
                f"{row['words']} words: {ratio:.1f}x the median chapter ({median:.0f})"
                if ratio > 1
                else f"{row['words']} words: only {ratio:.2f}x the median chapter ({median:.0f})"
            )
            inconsistencies.append(
                {"chapter": row["chapter"], "words": row["words"], "ratio": row["ratio"], "reason": reason}
            )
    balance = round(math.exp(-statistics.fmean(deviations)), 3) if deviations else 0.0
    if len(chapter_words) < 2:
        notes.append("one chapter or none: chapter lengths cannot be compared")
    scenes = story.scenes
    scene_words = [
        {"chapter": s.chapter, "scene": s.number, "words": f.words}
        for s, f in zip(scenes, scene_features, strict=True)
    ]
    curve: list[dict[str, Any]] = []
    for scene, feats in zip(scenes, scene_features, strict=True):
        strongest = max((e.intensity for e in scene.emotions), default=0.0)
        tension, emotion = scene_tension(feats.cue_emotions, strongest, feats.emotion_cues, feats.words)
        curve.append(
            {"chapter": scene.chapter, "scene": scene.number, "tension": tension, "emotion": emotion}
        )
    values = [p["tension"] for p in curve]
    spread = round(max(values) - min(values), 3) if values else 0.0
    climax = max(curve, key=lambda p: p["tension"]) if curve and max(values) > 0 else None
    if climax is not None:
        climax = {**climax, "position": round(curve.index(climax) / max(1, len(curve) - 1), 2)}
    if not scenes:
        notes.append("no scenes: no tension curve")
    return PacingAnalysis(
        chapter_words,
        scene_words,
        curve,
        inconsistencies,
        float(median),
        balance,
        spread,
        bool(len(curve) > 1 and spread < FLAT_TENSION_RANGE),
        climax,
        notes,
    )
