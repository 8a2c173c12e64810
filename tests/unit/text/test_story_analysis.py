"""Story analysis without a database: the seed's enhancement rules at their exact thresholds, the llm
path's confidence (kept, never certain), and stories with no chapters, no scenes, one scene, one word."""

from __future__ import annotations

from pathlib import Path

import pytest

from enchant_worker.text.pacing import UNEVEN_RATIO, PacingAnalysis, analyze_pacing
from enchant_worker.text.quality import SCORE_FIELDS, CharacterProfile, features
from enchant_worker.text.quality_llm import LlmAutoFixer, LlmSceneScorer, parse_scores
from enchant_worker.text.story_analysis import (
    BUILTIN_AUTO_FIXES_NOTE,
    CHARACTER_DEVELOPMENT_THRESHOLD,
    analyze_story,
    enhance_story_content,
)
from enchant_worker.text.story_input import StoryInput, story_from_texts

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"


def sample_story() -> StoryInput:
    text = SAMPLE.read_text()
    return story_from_texts("lamp", [c.split("\n", 1)[1] for c in text.split("\n## ")[1:]])


def profile(name: str, score: float, scenes=((1, 1), (1, 2))) -> CharacterProfile:
    return CharacterProfile(
        name,
        list(scenes),
        [f"id-{c}-{n}" for c, n in scenes],
        ["fear"] * len(scenes),
        0,
        1,
        0,
        score,
        {"why": "measured"},
    )


def pacing(inconsistencies) -> PacingAnalysis:
    return PacingAnalysis([], [], [], inconsistencies, 100.0, 1.0, 0.5, False, None)


def insights(score: float) -> dict:
    return {"character_development_score": score, "overall_quality": 0.7, "counts": {"scenes": 2}}


@pytest.mark.parametrize(("score", "fires"), [(0.6, False), (0.5999, True), (0.0, True), (0.61, False)])
def test_character_development_rule_at_its_exact_threshold(score, fires):
    assert CHARACTER_DEVELOPMENT_THRESHOLD == 0.6
    profiles = {"Ada": profile("Ada", 0.3), "Ben": profile("Ben", 0.9, ((2, 1),))}
    result = enhance_story_content(insights(score), pacing([]), profiles)
    rules = [s for s in result["suggestions"] if s["type"] == "character_development"]
    assert bool(rules) is fires
    if fires:
        rule = rules[0]
        assert rule["priority"] == "high" and rule["suggestion"] == "Add more character introspection scenes"
        # the under-developed characters' scenes only (Ben, at 0.9, is not one)
        assert rule["specific_scenes"] == [
            {"chapter": 1, "scene": 1, "scene_id": "id-1-1"},
            {"chapter": 1, "scene": 2, "scene_id": "id-1-2"},
        ]
        assert rule["characters"] == ["Ada"]
    assert result["overall_score"] == 0.7 and result["auto_fixes"] == []
    assert result["auto_fixes_note"] == BUILTIN_AUTO_FIXES_NOTE


def test_pacing_rule_fires_on_a_non_empty_list_only():
    assert not enhance_story_content(insights(0.9), pacing([]), {})["suggestions"]
    uneven = [{"chapter": 2, "words": 900, "ratio": 3.0, "reason": "long"}]
    [rule] = enhance_story_content(insights(0.9), pacing(uneven), {})["suggestions"]
    assert rule == {
        "type": "pacing",
        "priority": "medium",
        "suggestion": "Rebalance chapter lengths",
        "specific_chapters": uneven,
        "reasoning": ["long"],
    }


def test_pacing_inconsistencies_are_chapters_past_the_ratio():
    story = story_from_texts(
        "x",
        [
            "word " * 100,
            "word " * 100,
            "word " * int(100 * UNEVEN_RATIO),
            "word " * (int(100 * UNEVEN_RATIO) + 5),
            "word " * 30,
        ],
    )
    result = analyze_pacing(story, [features(s.text) for s in story.scenes])
    assert [i["chapter"] for i in result.pacing_inconsistencies] == [4, 5]  # exactly 2.5x is not past it


def test_sample_story_scores_with_evidence():
    analysis = analyze_story(sample_story())
    assert len(analysis.scene_scores) == 6
    for _, score in analysis.scene_scores:
        assert all(0 <= getattr(score, f) <= 1 for f in ("overall", *SCORE_FIELDS))
        assert set(score.evidence) == set(SCORE_FIELDS) and score.certain and score.confidence is None
    types = {s["type"] for s in analysis.suggestions["scenes"]}
    assert types <= {"missing_transition", "emotional_beat", "character_moment", "world_building"}
    assert analysis.pacing.pacing_inconsistencies == [] and len(analysis.pacing.tension_curve) == 6


@pytest.mark.parametrize(
    ("chapters", "scenes", "note"),
    [
        ([], 0, "the story has no chapters"),
        (["", "\n\n"], 0, "the story has no scenes"),
        (
            ["Elena climbed the tower, afraid of the storm, and lit the lamp before the boats came home."],
            1,
            None,
        ),
        (["Storm."], 1, None),
    ],
)
def test_bad_stories(chapters, scenes, note):
    analysis = analyze_story(story_from_texts("x", chapters))
    assert analysis.insights["counts"]["scenes"] == scenes
    assert all(0 <= v <= 1 for v in analysis.story_scores().values())
    if note:
        assert any(note in n for n in analysis.notes)
    if chapters == ["Storm."]:
        [(_, score)] = analysis.scene_scores
        assert "too short to judge" in score.notes[0] and score.overall < 0.35
    assert not [
        s for s in analysis.enhancement["suggestions"] if s["type"] == "pacing"
    ]  # one chapter: nothing to rebalance


def llm_answer(confidence: str, score: str = "7") -> dict:
    return {
        **{f: {"score": score, "reason": f"{f} reads well"} for f in SCORE_FIELDS},
        "confidence": confidence,
    }


def test_llm_scores_keep_their_confidence_and_are_never_certain():
    calls = []

    def complete(system, user, schema):
        calls.append(schema)
        return llm_answer("low")

    scorer = LlmSceneScorer(complete, "tiny-text")
    analysis = analyze_story(
        sample_story(),
        analyzer="llm",
        scorer=scorer,
        auto_fixer=LlmAutoFixer(
            lambda s, u, schema: {"insert": "She wondered why.", "confidence": "low"}, "tiny-text"
        ),
    )
    assert len(calls) == 6 and calls[0]["properties"]["confidence"]["enum"] == ["low", "medium", "high"]
    for _, score in analysis.scene_scores:
        assert (
            score.source == "llm" and score.confidence == 0.25 and score.certain is False and score.tentative
        )
        assert (
            score.narrative_coherence == 0.7 and score.evidence["pacing"]["llm_reason"] == "pacing reads well"
        )
        assert "builtin_score" in score.evidence["pacing"] and any("low confidence" in n for n in score.notes)
    assert analysis.insights["tentative_scenes"] == 6
    fixes = analysis.enhancement["auto_fixes"]
    if analysis.enhancement["suggestions"]:
        assert fixes and all(f["certain"] is False and f["confidence"] == 0.25 for f in fixes)


def test_llm_high_confidence_is_still_not_certain_and_unusable_answers_keep_builtin():
    scorer = LlmSceneScorer(lambda s, u, schema: llm_answer("high"), "m")
    [(_, score)] = analyze_story(
        story_from_texts("x", ["Ada laughed, delighted, in the red kitchen."]), scorer=scorer
    ).scene_scores
    assert score.confidence == 0.9 and not score.tentative and score.certain is False
    broken = LlmSceneScorer(lambda s, u, schema: None, "m")
    [(_, kept)] = analyze_story(
        story_from_texts("x", ["Ada laughed, delighted, in the red kitchen."]), scorer=broken
    ).scene_scores
    assert kept.source == "builtin" and "unusable" in kept.notes[-1] and broken.unusable == 1
    assert parse_scores({**llm_answer("high"), "pacing": {"score": "11", "reason": "x"}}) is None
    assert parse_scores({**llm_answer("sure")}) is None
