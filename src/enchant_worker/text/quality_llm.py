"""The `llm` path of story analysis: a text model scores each scene (0-10 per score, with a short reason
and its own confidence) and proposes concrete edits for the enhancement suggestions (`auto_fixes`).

Output is constrained JSON (lm-format-enforcer, through the llm analyzer's loaded model), so even a weak
model answers in shape. What a model says is never presented as certain: every llm score carries
`certain: false` and the model's confidence; one under `LOW_CONFIDENCE` is also `tentative` and the
notes say so. An unusable answer keeps builtin's score for that scene, said in its notes.

`complete(system, user, schema) -> dict | None` is the only contact with the model (tests pass their own)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from enchant_worker.text.quality import SCORE_FIELDS, QualityScore
from enchant_worker.text.story_input import SceneInput, StoryInput

Complete = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]
CONFIDENCE = {"low": 0.25, "medium": 0.6, "high": 0.9}
LOW_CONFIDENCE = 0.5  # under it an llm score is tentative
REASON_MAX_CHARS = 60
EDIT_MAX_CHARS = 160
SCENE_PROMPT_MAX_CHARS = 6000  # the scene text given to the model (its start)
MAX_AUTO_FIXES = 3
SCORE_SYSTEM = (
    "You judge one scene of a novel. Answer with JSON only: for each of narrative_coherence, "
    "visual_potential, character_development, pacing and emotional_impact a score from 0 to 10 and "
    "a short reason; then your confidence (low, medium, high)."
)
FIX_SYSTEM = (
    "You are an editor. Propose one concrete sentence to add to the scene so that it meets the "
    "suggestion. Answer with JSON only: the sentence to insert and your confidence (low, medium, high)."
)


def score_schema() -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "score": {"type": "string", "enum": [str(i) for i in range(11)]},
            "reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX_CHARS},
        },
        "required": ["score", "reason"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {f: item for f in SCORE_FIELDS}
    properties["confidence"] = {"type": "string", "enum": list(CONFIDENCE)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def fix_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "insert": {"type": "string", "minLength": 1, "maxLength": EDIT_MAX_CHARS},
            "confidence": {"type": "string", "enum": list(CONFIDENCE)},
        },
        "required": ["insert", "confidence"],
        "additionalProperties": False,
    }


class LlmSceneScorer:
    """A SceneScorer for `analyze_story`: the model's scores over builtin's, builtin's evidence kept."""

    def __init__(self, complete: Complete, model_name: str):
        self.complete = complete
        self.model_name = model_name
        self.seconds = 0.0
        self.unusable = 0

    def __call__(self, scene: SceneInput, builtin: QualityScore) -> QualityScore | None:
        started = time.perf_counter()
        answer = self.complete(SCORE_SYSTEM, f"Scene:\n{scene.text[:SCENE_PROMPT_MAX_CHARS]}", score_schema())
        self.seconds += time.perf_counter() - started
        parsed = parse_scores(answer)
        if parsed is None:
            self.unusable += 1
            builtin.notes.append(f"the llm's answer ({self.model_name}) was unusable: builtin's scores kept")
            return None
        scores, reasons, confidence = parsed
        evidence = {
            f: {**builtin.evidence[f], "builtin_score": getattr(builtin, f), "llm_reason": reasons[f]}
            for f in SCORE_FIELDS
        }
        notes = list(builtin.notes)
        tentative = confidence < LOW_CONFIDENCE
        if tentative:
            notes.append(
                f"tentative: the llm ({self.model_name}) gave these scores with low confidence "
                f"({confidence}); builtin's measured scores are in the evidence"
            )
        return QualityScore.from_parts(
            scores,
            evidence,
            source="llm",
            confidence=confidence,
            certain=False,
            tentative=tentative,
            notes=notes,
        )


def parse_scores(answer: dict[str, Any] | None) -> tuple[dict[str, float], dict[str, str], float] | None:
    """(scores 0-1, reasons, confidence) from the model's JSON, or None when any part is missing."""
    if not isinstance(answer, dict) or answer.get("confidence") not in CONFIDENCE:
        return None
    scores, reasons = {}, {}
    for name in SCORE_FIELDS:
        item = answer.get(name)
        if not isinstance(item, dict):
            return None
        try:
            value = int(str(item.get("score")))
        except ValueError:
            return None
        if not 0 <= value <= 10:
            return None
        scores[name] = value / 10
        reasons[name] = " ".join(str(item.get("reason", "")).split())[:REASON_MAX_CHARS]
    return scores, reasons, CONFIDENCE[answer["confidence"]]


class LlmAutoFixer:
    """auto_fixes of enhanceStoryContent: one proposed insertion per suggested scene (at most
    `MAX_AUTO_FIXES`), each with the model's confidence and `certain: false`."""

    def __init__(self, complete: Complete, model_name: str):
        self.complete = complete
        self.model_name = model_name

    def __call__(self, suggestions: list[dict[str, Any]], story: StoryInput) -> list[dict[str, Any]]:
        by_key = {(s.chapter, s.number): s for s in story.scenes}
        fixes: list[dict[str, Any]] = []
        for suggestion in suggestions:
            targets = [by_key.get((t["chapter"], t["scene"])) for t in suggestion.get("specific_scenes", [])]
            targets += [
                next((s for s in story.scenes if s.chapter == c["chapter"]), None)
                for c in suggestion.get("specific_chapters", [])
            ]
            for scene in [t for t in targets if t is not None]:
                if len(fixes) >= MAX_AUTO_FIXES:
                    return fixes
                answer = self.complete(
                    FIX_SYSTEM,
                    f"Suggestion: {suggestion['suggestion']}\n\nScene:\n"
                    f"{scene.text[:SCENE_PROMPT_MAX_CHARS]}",
                    fix_schema(),
                )
                if (
                    not isinstance(answer, dict)
                    or not str(answer.get("insert", "")).strip()
                    or answer.get("confidence") not in CONFIDENCE
                ):
                    continue
                confidence = CONFIDENCE[answer["confidence"]]
                fixes.append(
                    {
                        "type": suggestion["type"],
                        "chapter": scene.chapter,
                        "scene": scene.number,
                        "scene_id": scene.id,
                        "operation": "insert_at_end",
                        "text": " ".join(str(answer["insert"]).split()),
                        "confidence": confidence,
                        "certain": False,
                        "tentative": confidence < LOW_CONFIDENCE,
                        "source": f"llm:{self.model_name}",
                    }
                )
        return fixes


def model_complete(analyzer) -> Complete:
    """`complete` on the llm analyzer's resident model (text.llm), constrained by the schema."""
    from enchant_worker.text.llm import json_completion

    loaded = analyzer._load()
    return lambda system, user, schema: json_completion(analyzer, loaded, system, user, schema)
