"""A whole story's analysis: every scene's QualityScore, `generateContentInsights` (StoryInsights),
`analyzeNarrativePacing`, the ContentSuggestionEngine's suggestions, and `enhanceStoryContent` with the
seed's rules (section 9):

- `character_development_score < 0.6`: a high-priority `character_development` suggestion "Add more
  character introspection scenes" naming the scenes of the characters under 0.6
- `pacing_inconsistencies` not empty: a medium-priority `pacing` suggestion "Rebalance chapter lengths"
  naming those chapters
- `overall_score`, and `auto_fixes`: concrete edits only the llm analyzer proposes (with builtin: none,
  and `auto_fixes_note` says so)

1. Score the scenes (builtin; an llm scorer may replace the scores, keeping builtin's evidence).
2. Pacing: chapter lengths, tension curve, inconsistencies.
3. Insights: the story's scores, characters, emotions, strongest and weakest scenes.
4. Suggestions per chapter, per character, for the plot.
5. Enhancement: the seed's rules.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from enchant_worker.text.pacing import PacingAnalysis, analyze_pacing
from enchant_worker.text.quality import (
    SCORE_FIELDS,
    CharacterProfile,
    QualityScore,
    dominant_emotion,
    score_story_scenes,
    story_character_development,
)
from enchant_worker.text.story_input import SceneInput, StoryInput
from enchant_worker.text.suggestions import (
    as_dicts,
    suggest_character_development,
    suggest_plot_enhancements,
    suggest_scenes,
)

CHARACTER_DEVELOPMENT_THRESHOLD = 0.6  # the seed's rule: under it, suggest introspection scenes
BUILTIN_AUTO_FIXES_NOTE = (
    "the builtin analyzer proposes no text edits (auto_fixes is empty); run the analysis "
    'with analyzer "llm" for concrete proposed edits'
)
STORY_PACING_BALANCE_WEIGHT = 0.5  # story pacing: half scene rhythm, half chapter balance

# scene, its builtin score -> a replacement score (the llm scorer), or None to keep builtin's
SceneScorer = Callable[[SceneInput, QualityScore], QualityScore | None]
# suggestions, story -> proposed edits (the llm's auto fixes)
AutoFixer = Callable[[list[dict[str, Any]], StoryInput], list[dict[str, Any]]]


@dataclass
class StoryAnalysis:
    analyzer: str
    scene_scores: list[tuple[SceneInput, QualityScore]]
    insights: dict[str, Any]  # StoryInsights
    pacing: PacingAnalysis
    suggestions: dict[str, Any]  # {"scenes": [...], "characters": [...], "plot": [...]}
    enhancement: dict[str, Any]  # EnhancementResult
    notes: list[str] = field(default_factory=list)

    def story_scores(self) -> dict[str, float]:
        return self.insights["scores"]


def analyze_story(
    story: StoryInput,
    *,
    analyzer: str = "builtin",
    scorer: SceneScorer | None = None,
    auto_fixer: AutoFixer | None = None,
) -> StoryAnalysis:
    notes: list[str] = []
    if not story.chapters:
        notes.append(
            "the story has no chapters: add chapters (POST /stories/{id}/chapters) and analyse again"
        )
    elif not story.scenes:
        notes.append("the story has no scenes: its chapters have no text to analyse")
    # 1. Scenes
    scores, profiles, feats = score_story_scenes(story)
    if scorer is not None:
        scores = [scorer(scene, score) or score for scene, score in zip(story.scenes, scores, strict=True)]
    for score in scores:
        notes += [n for n in score.notes if n not in notes and "too short" not in n]
    # 2. Pacing
    pacing = analyze_pacing(story, feats)
    notes += pacing.notes
    # 3. Insights
    insights = content_insights(story, scores, profiles, pacing, feats)
    # 4. Suggestions
    by_chapter: list[dict[str, Any]] = []
    index = 0
    for chapter in story.chapters:
        chapter_scores = scores[index : index + len(chapter.scenes)]
        index += len(chapter.scenes)
        by_chapter += as_dicts(suggest_scenes(chapter, chapter_scores, profiles))
    suggestions = {
        "scenes": by_chapter,
        "characters": [s for p in profiles.values() for s in as_dicts(suggest_character_development(p))],
        "plot": as_dicts(suggest_plot_enhancements(pacing)),
    }
    # 5. Enhancement
    enhancement = enhance_story_content(insights, pacing, profiles)
    if auto_fixer is not None:
        enhancement["auto_fixes"] = auto_fixer(enhancement["suggestions"], story)
        enhancement["auto_fixes_note"] = (
            ("proposed by the llm analyzer: review each before applying; none is certain")
            if enhancement["auto_fixes"]
            else "the llm analyzer proposed no edit for these suggestions"
        )
    return StoryAnalysis(
        analyzer,
        list(zip(story.scenes, scores, strict=True)),
        insights,
        pacing,
        suggestions,
        enhancement,
        notes,
    )


def content_insights(
    story: StoryInput,
    scores: list[QualityScore],
    profiles: dict[str, CharacterProfile],
    pacing: PacingAnalysis,
    feats,
) -> dict[str, Any]:
    """generateContentInsights(story) -> StoryInsights."""
    scenes = story.scenes
    story_scores = {
        f: round(statistics.fmean(getattr(s, f) for s in scores), 3) if scores else 0.0 for f in SCORE_FIELDS
    }
    story_scores["character_development"] = story_character_development(profiles)
    if scores:
        rhythm = story_scores["pacing"]
        story_scores["pacing"] = round(
            (1 - STORY_PACING_BALANCE_WEIGHT) * rhythm
            + STORY_PACING_BALANCE_WEIGHT * rhythm * pacing.chapter_balance,
            3,
        )
    story_scores["overall"] = round(statistics.fmean(story_scores[f] for f in SCORE_FIELDS), 3)
    emotions: Counter[str] = Counter()
    for scene, feat in zip(scenes, feats, strict=True):
        emotion = dominant_emotion(scene, feat)
        if emotion:
            emotions[emotion] += 1
    ranked = sorted(zip(scenes, scores, strict=True), key=lambda p: p[1].overall)
    tentative = [s for s in scores if not s.certain]

    def ref(pair) -> dict[str, Any]:
        scene, score = pair
        return {
            "chapter": scene.chapter,
            "scene": scene.number,
            "scene_id": scene.id,
            "overall": score.overall,
        }

    return {
        "title": story.title,
        "scores": story_scores,
        "character_development_score": story_scores["character_development"],
        "overall_quality": story_scores["overall"],
        "counts": {
            "chapters": len(story.chapters),
            "scenes": len(scenes),
            "words": sum(f.words for f in feats),
            "characters": len(profiles),
        },
        "characters": [
            {
                "name": p.name,
                "appearances": len(p.scenes),
                "development": p.score,
                "emotions": p.emotions,
                "evidence": p.evidence,
            }
            for p in sorted(profiles.values(), key=lambda p: -len(p.scenes))
        ],
        "emotions": dict(emotions.most_common()),
        "strongest_scenes": [ref(p) for p in reversed(ranked[-3:])],
        "weakest_scenes": [ref(p) for p in ranked[:3]],
        "tentative_scenes": len(tentative),
        "unextracted_chapters": [c.number for c in story.chapters if not c.extracted],
    }


def enhance_story_content(
    insights: dict[str, Any], pacing: PacingAnalysis, profiles: dict[str, CharacterProfile]
) -> dict[str, Any]:
    """enhanceStoryContent(storyId) -> EnhancementResult, with the seed's two rules at their exact thresholds."""
    suggestions: list[dict[str, Any]] = []
    score = insights["character_development_score"]
    if insights["counts"]["scenes"] and score < CHARACTER_DEVELOPMENT_THRESHOLD:
        under = [p for p in profiles.values() if p.score < CHARACTER_DEVELOPMENT_THRESHOLD]
        specific = []
        for profile in under:
            for (chapter, number), scene_id in zip(profile.scenes, profile.scene_ids, strict=True):
                entry = {"chapter": chapter, "scene": number, "scene_id": scene_id}
                if entry not in specific:
                    specific.append(entry)
        suggestions.append(
            {
                "type": "character_development",
                "priority": "high",
                "suggestion": "Add more character introspection scenes",
                "specific_scenes": specific,
                "characters": [p.name for p in under],
                "reasoning": [f"character_development_score {score:.3f} < {CHARACTER_DEVELOPMENT_THRESHOLD}"]
                + [f"{p.name} ({p.score:.2f}): {p.evidence['why']}" for p in under],
            }
        )
    if pacing.pacing_inconsistencies:
        suggestions.append(
            {
                "type": "pacing",
                "priority": "medium",
                "suggestion": "Rebalance chapter lengths",
                "specific_chapters": pacing.pacing_inconsistencies,
                "reasoning": [i["reason"] for i in pacing.pacing_inconsistencies],
            }
        )
    return {
        "overall_score": insights["overall_quality"],
        "suggestions": suggestions,
        "auto_fixes": [],
        "auto_fixes_note": BUILTIN_AUTO_FIXES_NOTE,
    }


def scene_result(scene: SceneInput, score: QualityScore) -> dict[str, Any]:
    """What is stored per scene."""
    return {**asdict(score), "chapter": scene.chapter, "scene": scene.number}
