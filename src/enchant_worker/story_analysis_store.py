"""Story analysis in the database: the story read as analysis input (extracted scenes; chapters never
extracted are split in memory by builtin), and the results stored:

- per scene: entity_metadata (`scene`, id, `analysis.quality`): its QualityScore, evidence, and the hash of what
  it was computed from
- per story: entity_metadata (`story`, id, `analysis.story`): insights, pacing, suggestions, enhancement, and
  the story's content hash; and one story_metrics row per figure (`metric_type` `quality_overall`,
  `quality_pacing`, ..., `character_development_score`, `words`, `scenes`) whose metadata names the hash

Re-running on unchanged content (same hash) reuses the stored analysis: nothing is written."""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker.sql import q
from enchant_worker.text.quality import SCORE_FIELDS
from enchant_worker.text.story_analysis import StoryAnalysis, scene_result
from enchant_worker.text.story_input import (
    ChapterInput,
    Feeling,
    SceneInput,
    StoryInput,
    chapter_from_text,
    scene_hash,
)

# Keys under this prefix are written by analyze_story only: the user metadata API neither shows nor takes them
# (so templates never see them and a user cannot forge a score).
RESERVED_PREFIX = "analysis."
STORY_KEY = "analysis.story"
SCENE_KEY = "analysis.quality"
METRIC_PREFIX = "quality_"


class StoryNotFound(LookupError):
    pass


def load_story(conn, story_id) -> tuple[dict[str, Any], StoryInput]:
    """The story row and its analysis input."""
    story = conn.execute(q("analysis_story"), {"id": story_id}).fetchone()
    if story is None:
        raise StoryNotFound(f"no story has id {story_id}")
    scenes: dict[Any, list[SceneInput]] = {}
    chapters = conn.execute(q("analysis_chapters"), {"story_id": story_id}).fetchall()
    numbers = {c["id"]: c["chapter_number"] for c in chapters}
    for row in conn.execute(q("analysis_scenes"), {"story_id": story_id}):
        scenes.setdefault(row["chapter_id"], []).append(
            SceneInput(
                numbers[row["chapter_id"]],
                row["scene_number"],
                row["content"],
                list(row["characters"]),
                [Feeling(e["character"], e["emotion"], float(e["intensity"] or 0)) for e in row["emotions"]],
                row["location"],
                str(row["id"]),
            )
        )
    result = StoryInput(story["title"])
    for chapter in chapters:
        if chapter["id"] in scenes:
            result.chapters.append(
                ChapterInput(
                    chapter["chapter_number"],
                    chapter["content"],
                    chapter["title"],
                    scenes[chapter["id"]],
                    str(chapter["id"]),
                )
            )
        else:  # never extracted: builtin's scenes, in memory only
            found = chapter_from_text(chapter["chapter_number"], chapter["content"], chapter["title"])
            found.id = str(chapter["id"])
            result.chapters.append(found)
    return story, result


def stored(conn, entity_type: str, entity_id, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        q("analysis_get"), {"entity_type": entity_type, "entity_id": entity_id, "key": key}
    ).fetchone()
    if row is None:
        return None
    return {**row["value"], "computed_at": row["computed_at"].isoformat()}


def is_stale(conn, story_id, document: dict[str, Any]) -> bool:
    """Whether the story changed since `document` (its stored analysis) was computed."""
    _, story_input = load_story(conn, story_id)
    return (
        story_input.content_hash(analyzer_key(document["analyzer"], document.get("text_model")))
        != document["content_hash"]
    )


def analyzer_key(analyzer: str, text_model: str | None) -> str:
    """What the content hash is keyed by: the analyzer, and for the llm its model."""
    return f"llm:{text_model}" if analyzer == "llm" and text_model else analyzer


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save(
    conn, story_id, analysis: StoryAnalysis, content_hash: str, *, job_id=None, text_model: str | None = None
) -> dict[str, Any]:
    """Write the scenes' scores, the story's analysis and its metrics (one transaction)."""
    scene_ids, scene_values = [], []
    for scene, score in analysis.scene_scores:
        if scene.id is None:
            continue  # a chapter never extracted: its scenes have no rows to hang scores on
        scene_ids.append(scene.id)
        scene_values.append(
            Jsonb(
                {
                    **scene_result(scene, score),
                    "content_hash": scene_hash(scene, analysis.analyzer),
                    "text_sha256": text_sha256(scene.text),
                    "story_hash": content_hash,
                    "analyzer": analysis.analyzer,
                }
            )
        )
    document = {
        "content_hash": content_hash,
        "analyzer": analysis.analyzer,
        "text_model": text_model,
        "job_id": str(job_id) if job_id else None,
        "insights": analysis.insights,
        "pacing": analysis.pacing.to_dict(),
        "suggestions": analysis.suggestions,
        "enhancement": analysis.enhancement,
        "notes": analysis.notes,
        "scenes": [
            {
                "chapter": s.chapter,
                "scene": s.number,
                "scene_id": s.id,
                "overall": score.overall,
                "certain": score.certain,
                "confidence": score.confidence,
            }
            for s, score in analysis.scene_scores
        ],
    }
    metrics = metric_values(analysis)
    with conn.transaction():
        if scene_ids:
            conn.execute(
                q("analysis_put"),
                {"entity_type": "scene", "key": SCENE_KEY, "ids": scene_ids, "values": scene_values},
            )
        conn.execute(
            q("analysis_put"),
            {"entity_type": "story", "key": STORY_KEY, "ids": [story_id], "values": [Jsonb(document)]},
        )
        conn.execute(
            q("analysis_metrics_add"),
            {
                "story_id": story_id,
                "types": list(metrics),
                "values": [float(v) for v in metrics.values()],
                "metadata": Jsonb(
                    {
                        "source": "analyze_story",
                        "content_hash": content_hash,
                        "analyzer": analysis.analyzer,
                        "job_id": str(job_id) if job_id else None,
                    }
                ),
            },
        )
    return {"scenes_scored": len(scene_ids), "metrics": metrics}


def metric_values(analysis: StoryAnalysis) -> dict[str, float]:
    scores = analysis.story_scores()
    metrics = {f"{METRIC_PREFIX}{f}": scores[f] for f in ("overall", *SCORE_FIELDS)}
    metrics["character_development_score"] = analysis.insights["character_development_score"]
    metrics["pacing_inconsistencies"] = len(analysis.pacing.pacing_inconsistencies)
    metrics["words"] = analysis.insights["counts"]["words"]
    metrics["scenes"] = analysis.insights["counts"]["scenes"]
    return metrics
