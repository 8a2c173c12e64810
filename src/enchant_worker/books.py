"""The database side of books: ingest (a `Book` → a story and its chapters) and extraction (a
`ChapterAnalysis` → scenes, characters, locations, emotions, transitions). Used by the CLI, the API and
the `extract_scenes` handler; torch-free.

Both are idempotent. Ingest: the same file twice is one story (content hash); a chapter is rewritten only
when its text changed. Extraction: scenes are matched to the chapter's current ones by their text; an
unchanged scene is kept as it is, a changed analysis rewrites it (unless a person edited it), a scene the
new extraction no longer finds is deleted, or retired when it has images or edits. The chapter's revision
goes up only when something changed, and `scene_extractions` records what.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from psycopg.types.json import Jsonb

from enchant_worker.sql import q
from enchant_worker.text.analysis import ChapterAnalysis, KnownCharacter, SceneAnalysis
from enchant_worker.text.ingest import Book, Chapter
from enchant_worker.text.lexicon import VALENCE

SUDDEN_INTENSITY_JUMP = 0.4


# -- ingest --------------------------------------------------------------------------------------


def save_book(
    conn,
    book: Book,
    *,
    user_id: uuid.UUID | None,
    story_id: uuid.UUID | None = None,
    title: str | None = None,
    description: str | None = None,
    genre: str | None = None,
) -> dict[str, Any]:
    """Stores a book as a new story (or into `story_id`); returns a report of what was stored."""
    with conn.transaction():
        if story_id is None:
            existing = conn.execute(
                q("book_story_by_source"), {"user_id": user_id, "source_hash": book.source_hash}
            ).fetchone()
            if existing is not None:
                chapters = conn.execute(q("book_chapters"), {"story_id": existing["id"]}).fetchall()
                return {
                    "story_id": existing["id"],
                    "title": existing["title"],
                    "created": False,
                    "unchanged": True,
                    "book": book.report(),
                    "chapters": [
                        {
                            "id": c["id"],
                            "number": c["chapter_number"],
                            "title": c["title"],
                            "status": "unchanged",
                        }
                        for c in chapters
                    ],
                }
            source = {k: v for k, v in book.report().items() if k != "chapters"}
            story = conn.execute(
                q("book_story_create"),
                {
                    "user_id": user_id,
                    "title": title or book.title or "Untitled",
                    "description": description,
                    "genre": genre,
                    "source_hash": book.source_hash,
                    "source": Jsonb(source),
                },
            ).fetchone()
            story_id, created = story["id"], True
        else:
            story = conn.execute(q("book_story_lock"), {"id": story_id}).fetchone()
            if story is None:
                raise LookupError(f"no story with id {story_id}")
            created = False
        if created:
            results = [_upsert_chapter(conn, story_id, chapter) for chapter in book.chapters]
        else:  # into an existing story: after its last chapter, a chapter already there (same text) kept
            results = [_append_chapter(conn, story_id, chapter) for chapter in book.chapters]
    changed = any(r["status"] != "unchanged" for r in results)
    return {
        "story_id": story_id,
        "title": story["title"],
        "created": created,
        "unchanged": not changed,
        "book": book.report(),
        "chapters": results,
    }


def add_chapter(
    conn, story_id: uuid.UUID, text: str, *, title: str | None = None, number: int | None = None
) -> dict[str, Any]:
    """One chapter into a story: at `number` (replacing that chapter's text when it differs) or after the
    last one; the same text added twice is one chapter."""
    with conn.transaction():
        if conn.execute(q("book_story_lock"), {"id": story_id}).fetchone() is None:
            raise LookupError(f"no story with id {story_id}")
        if number is None:
            return _append_chapter(conn, story_id, Chapter(0, title, text))
        return _upsert_chapter(conn, story_id, Chapter(number, title, text))


def _append_chapter(conn, story_id: uuid.UUID, chapter: Chapter) -> dict[str, Any]:
    same = conn.execute(
        q("book_chapter_by_hash"), {"story_id": story_id, "content_hash": chapter.content_hash}
    ).fetchone()
    if same is not None:
        return {
            "id": same["id"],
            "number": same["chapter_number"],
            "title": chapter.title,
            "words": chapter.words,
            "status": "unchanged",
        }
    number = conn.execute(q("book_next_chapter_number"), {"story_id": story_id}).fetchone()["number"]
    return _upsert_chapter(conn, story_id, Chapter(number, chapter.title, chapter.text))


def _upsert_chapter(conn, story_id: uuid.UUID, chapter: Chapter) -> dict[str, Any]:
    row = conn.execute(
        q("book_chapter_upsert"),
        {
            "story_id": story_id,
            "number": chapter.number,
            "title": chapter.title,
            "content": chapter.text,
            "content_hash": chapter.content_hash,
        },
    ).fetchone()
    return {
        "id": row["id"],
        "number": chapter.number,
        "title": chapter.title,
        "words": chapter.words,
        "status": row["status"],
    }


# -- extraction ----------------------------------------------------------------------------------


def known_characters(conn, story_id: uuid.UUID) -> list[KnownCharacter]:
    rows = conn.execute(q("extraction_story_characters"), {"story_id": story_id}).fetchall()
    return [KnownCharacter(r["name"], tuple(r["aliases"] or ())) for r in rows]


def custom_fields_to_fill(conn, story_id: uuid.UUID) -> list[dict[str, Any]]:
    """The story's custom fields an analyzer may fill ({"name", "type", "applies_to"})."""
    rows = conn.execute(q("extraction_custom_fields"), {"story_id": story_id}).fetchall()
    return [
        {"name": r["field_name"], "type": r["field_type"], "applies_to": list(r["applies_to"])} for r in rows
    ]


def apply_extraction(
    conn,
    chapter_id: uuid.UUID,
    analysis: ChapterAnalysis,
    *,
    job_id: uuid.UUID | None = None,
    content_hash: str | None = None,
) -> dict[str, Any]:
    """Writes an analysis of a chapter in one transaction; returns what changed (and the new scenes' ids)."""
    with conn.transaction():
        # 1. The chapter, locked: two extractions of one chapter run one after the other
        chapter = conn.execute(q("book_chapter_lock"), {"id": chapter_id}).fetchone()
        if chapter is None:
            raise LookupError(f"no chapter with id {chapter_id}")
        story_id = chapter["story_id"]
        conn.execute(
            q("book_story_lock"), {"id": story_id}
        )  # characters merge story-wide: one chapter at a time
        if content_hash is not None and chapter["content_hash"] not in (None, content_hash):
            raise RuntimeError("the chapter's text changed while it was being analysed; extract it again")
        revision = conn.execute(q("extraction_last_revision"), {"chapter_id": chapter_id}).fetchone()[
            "revision"
        ]
        next_revision = revision + 1
        # 2. Characters and locations of the story, merged by name and alias
        character_ids, new_characters = _save_characters(conn, story_id, analysis)
        location_ids, new_locations = _save_locations(conn, story_id, analysis)
        # 3. Scenes: keep, rewrite, add, then delete or retire the rest
        old = conn.execute(q("extraction_chapter_scenes"), {"chapter_id": chapter_id}).fetchall()
        unmatched = {r["id"]: r for r in old}
        changes: dict[str, list] = {
            "added": [],
            "updated": [],
            "kept": [],
            "kept_edited": [],
            "retired": [],
            "deleted": [],
        }
        scene_ids: list[uuid.UUID] = []
        for scene in analysis.scenes:
            text_hash = _hash(scene.text)
            fingerprint = _fingerprint(scene)
            match = next((r for r in unmatched.values() if r["content_hash"] == text_hash), None)
            values = _scene_values(scene, analysis.analyzer, location_ids, fingerprint, next_revision)
            if match is None:
                scene_id = conn.execute(
                    q("extraction_scene_insert"),
                    {**values, "chapter_id": chapter_id, "content": scene.text, "content_hash": text_hash},
                ).fetchone()["id"]
                _write_people(conn, scene_id, scene, character_ids)
                _write_custom_values(conn, story_id, scene_id, scene, character_ids)
                changes["added"].append(_brief(scene_id, scene))
            else:
                del unmatched[match["id"]]
                scene_id = match["id"]
                rewrite = match["analysis_hash"] != fingerprint and not match["has_edits"]
                if rewrite:
                    values["revision"] = next_revision
                conn.execute(q("extraction_scene_update"), {**values, "id": scene_id, "rewrite": rewrite})
                if rewrite:
                    conn.execute(q("extraction_scene_clear"), {"id": scene_id})
                    _write_people(conn, scene_id, scene, character_ids)
                    _write_custom_values(conn, story_id, scene_id, scene, character_ids)
                    changes["updated"].append(_brief(scene_id, scene))
                elif match["analysis_hash"] != fingerprint:
                    changes["kept_edited"].append(_brief(scene_id, scene))
                else:
                    changes["kept"].append(_brief(scene_id, scene))
                    if match["scene_number"] != scene.number:
                        changes.setdefault("renumbered", []).append(str(scene_id))
            scene_ids.append(scene_id)
        for row in unmatched.values():
            if row["has_images"] or row["has_edits"]:
                conn.execute(q("extraction_scene_retire"), {"id": row["id"]})
                why = "images" if row["has_images"] else "edits"
                changes["retired"].append(
                    {"id": str(row["id"]), "number": row["scene_number"], "because": why}
                )
            else:
                conn.execute(q("extraction_scene_delete"), {"id": row["id"]})
                changes["deleted"].append({"id": str(row["id"]), "number": row["scene_number"]})
        # 4. Transitions between each character's consecutive scenes, over the whole story
        transitions = recompute_transitions(conn, story_id)
        # 5. The revision and the record of this run
        changed = (
            any(changes[k] for k in ("added", "updated", "retired", "deleted"))
            or "renumbered" in changes
            or revision == 0
        )
        revision = next_revision if changed else revision
        summary = {
            "chapter_id": str(chapter_id),
            "story_id": str(story_id),
            "analyzer": analysis.analyzer,
            "revision": revision,
            "changed": changed,
            "counts": {k: len(v) for k, v in changes.items()},
            "new_characters": new_characters,
            "new_locations": new_locations,
            "transitions": transitions,
            "notes": analysis.notes,
            **changes,
        }
        conn.execute(
            q("extraction_record"),
            {
                "chapter_id": chapter_id,
                "job_id": job_id,
                "analyzer": analysis.analyzer,
                "revision": revision,
                "content_hash": chapter["content_hash"],
                "changes": Jsonb(summary),
            },
        )
    summary["scene_ids"] = [str(s) for s in scene_ids]
    summary["new_scene_ids"] = [s["id"] for s in changes["added"]]
    return summary


def _save_characters(conn, story_id, analysis: ChapterAnalysis) -> tuple[dict[str, uuid.UUID], list[str]]:
    rows = conn.execute(q("extraction_story_characters"), {"story_id": story_id}).fetchall()
    by_form: dict[str, uuid.UUID] = {}
    for r in rows:
        for form in (r["name"], *(r["aliases"] or ())):
            by_form.setdefault(form.lower(), r["id"])
    ids: dict[str, uuid.UUID] = {}
    new: list[str] = []
    for info in analysis.characters:
        found = next((by_form[f.lower()] for f in (info.name, *info.aliases) if f.lower() in by_form), None)
        if found is None:
            found = conn.execute(
                q("extraction_character_insert"),
                {
                    "story_id": story_id,
                    "name": info.name,
                    "aliases": list(info.aliases),
                    "appearance": info.appearance,
                },
            ).fetchone()["id"]
            new.append(info.name)
        else:
            conn.execute(
                q("extraction_character_merge"),
                {"id": found, "aliases": [info.name, *info.aliases], "appearance": info.appearance},
            )
        for form in (info.name, *info.aliases):
            by_form.setdefault(form.lower(), found)
        ids[info.name] = found
    return ids, new


def _save_locations(conn, story_id, analysis: ChapterAnalysis) -> tuple[dict[str, uuid.UUID], list[str]]:
    rows = conn.execute(q("extraction_story_locations"), {"story_id": story_id}).fetchall()
    by_name = {r["name"].lower(): r["id"] for r in rows}
    new = []
    for info in analysis.locations:
        if info.name.lower() not in by_name:
            by_name[info.name.lower()] = conn.execute(
                q("extraction_location_insert"),
                {"story_id": story_id, "name": info.name, "description": info.description},
            ).fetchone()["id"]
            new.append(info.name)
    return by_name, new


def _scene_values(
    scene: SceneAnalysis, analyzer: str, location_ids: dict, fingerprint: str, revision: int
) -> dict[str, Any]:
    location_id = None
    if scene.location:
        location_id = location_ids.get(scene.location.lower())
    return {
        "number": scene.number,
        "title": scene.title,
        "summary": scene.summary,
        "tone": scene.emotional_tone,
        "location_id": location_id,
        "start": scene.start,
        "end": scene.end,
        "analyzer": analyzer,
        "analysis_hash": fingerprint,
        "revision": revision,
    }


def _write_custom_values(
    conn, story_id, scene_id, scene: SceneAnalysis, character_ids: dict[str, uuid.UUID]
) -> int:
    """Custom field values the analyzer found for the scene and its characters, where the entity has
    none yet (a person's value, or an earlier scene's reading of a character, stays)."""
    targets = [("scene", scene_id, scene.custom_values.get("scene") or {})]
    for name, values in (scene.custom_values.get("characters") or {}).items():
        if name in character_ids and isinstance(values, dict):
            targets.append(("character", character_ids[name], values))
    written = 0
    for entity_type, entity_id, values in targets:
        for field_name, value in values.items():
            row = conn.execute(
                q("extraction_custom_value_fill"),
                {
                    "story_id": story_id,
                    "name": field_name,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "value": Jsonb(value),
                },
            ).fetchone()
            written += row is not None
    return written


def _write_people(conn, scene_id, scene: SceneAnalysis, character_ids: dict[str, uuid.UUID]) -> None:
    for name in scene.characters:
        if name in character_ids:
            conn.execute(
                q("extraction_scene_character"), {"scene_id": scene_id, "character_id": character_ids[name]}
            )
    for reading in scene.emotions:
        if reading.character not in character_ids:
            continue
        conn.execute(
            q("extraction_emotion_insert"),
            {
                "character_id": character_ids[reading.character],
                "scene_id": scene_id,
                "primary": reading.primary_emotion,
                "intensity": round(min(1.0, max(0.0, reading.intensity)), 2),
                "secondary": Jsonb(reading.secondary_emotions or {}),
                "triggers": list(reading.triggers),
                "face": reading.facial_expression_notes,
                "body": reading.body_language_notes,
            },
        )


def recompute_transitions(conn, story_id) -> int:
    """Rewrites the story's emotion transitions: between a character's consecutive scenes whose primary
    emotions differ. `triggered` when the later scene names a trigger, `sudden` when the feeling flips
    between pleasant and unpleasant or its intensity jumps by 0.4 or more, else `gradual`."""
    rows = conn.execute(q("extraction_story_emotions"), {"story_id": story_id}).fetchall()
    conn.execute(q("extraction_transitions_clear"), {"story_id": story_id})
    count = 0
    previous: dict[Any, dict] = {}
    for row in rows:
        before = previous.get(row["character_id"])
        previous[row["character_id"]] = row
        if before is None or before["scene_id"] == row["scene_id"]:
            continue
        kind, cause = classify_transition(
            before["primary_emotion"],
            _f(before["emotion_intensity"]),
            row["primary_emotion"],
            _f(row["emotion_intensity"]),
            row["emotional_triggers"] or [],
        )
        if kind is None:
            continue
        conn.execute(
            q("extraction_transition_insert"),
            {
                "character_id": row["character_id"],
                "from_scene_id": before["scene_id"],
                "to_scene_id": row["scene_id"],
                "type": kind,
                "cause": cause,
            },
        )
        count += 1
    return count


def classify_transition(
    from_emotion: str, from_intensity: float, to_emotion: str, to_intensity: float, triggers: Sequence[str]
) -> tuple[str | None, str | None]:
    if from_emotion == to_emotion:
        return None, None
    change = f"{from_emotion} → {to_emotion}"
    if triggers:
        return "triggered", f"{change}: {triggers[0]}"
    flip = VALENCE.get(from_emotion, 0) * VALENCE.get(to_emotion, 0) < 0
    if flip or abs(to_intensity - from_intensity) >= SUDDEN_INTENSITY_JUMP:
        return "sudden", change
    return "gradual", change


def _f(value: Any) -> float:
    return float(value) if value is not None else 0.5


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _fingerprint(scene: SceneAnalysis) -> str:
    data = {
        "title": scene.title,
        "summary": scene.summary,
        "tone": scene.emotional_tone,
        "location": scene.location,
        "characters": scene.characters,
        "emotions": [asdict(e) for e in scene.emotions],
        "custom": scene.custom_values,
    }
    return _hash(json.dumps(data, sort_keys=True, ensure_ascii=False))


def _brief(scene_id, scene: SceneAnalysis) -> dict[str, Any]:
    return {
        "id": str(scene_id),
        "number": scene.number,
        "title": scene.title,
        "characters": scene.characters,
        "emotional_tone": scene.emotional_tone,
        "location": scene.location,
    }
