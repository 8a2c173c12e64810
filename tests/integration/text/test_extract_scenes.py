"""extract_scenes through the queue and a real worker: rows written, re-extraction idempotent, scenes
with images or edits never deleted, bad input refused with the worker and the data intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from enchant_worker import books
from enchant_worker.domain.jobs import NewJob
from enchant_worker.errors import InvalidJob
from enchant_worker.handlers.extract_scenes import HANDLER
from enchant_worker.queue import JobQueue
from enchant_worker.text.ingest import read_file
from tests.support.workers import WorkerThreads

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


@pytest.fixture
def story(conn):
    user = conn.execute("INSERT INTO users (email) VALUES ('author@example.org') RETURNING id").fetchone()[
        "id"
    ]
    report = books.save_book(conn, read_file(SAMPLE), user_id=user)
    return report


def run_jobs(db, settings, types=("extract_scenes",)):
    workers = WorkerThreads(db, settings)
    _, thread = workers.start(types=list(types), burst=True)
    thread.join(60)
    assert not thread.is_alive(), "the worker did not finish"


def extract_all(queue, story, **metadata):
    return [
        queue.enqueue(
            NewJob(
                "extract_scenes",
                {"chapter_id": str(c["id"]), **metadata},
                entity_type="chapter",
                entity_id=c["id"],
            )
        )
        for c in story["chapters"]
    ]


def count(conn, table):
    return conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def test_extraction_writes_every_table(db, conn, settings, queue, story):
    jobs = extract_all(queue, story)
    run_jobs(db, settings)
    results = [queue.get(j) for j in jobs]
    assert all(r.status == "completed" for r in results), [r.error_message for r in results]
    assert results[0].result["counts"]["added"] == 2 and results[0].result["revision"] == 1
    scenes = conn.execute(
        "SELECT s.*, l.name AS place FROM scenes s LEFT JOIN locations l ON l.id = s.location_id "
        "JOIN chapters c ON c.id = s.chapter_id ORDER BY c.chapter_number, s.scene_number"
    ).fetchall()
    assert len(scenes) == 6
    assert all(
        s["summary"] and s["title"] and s["emotional_tone"] and s["content_end"] > s["content_start"]
        for s in scenes
    )
    assert [s["place"] for s in scenes][:2] == ["Marrow Point", "the harbour"]
    people = {r["name"]: r for r in conn.execute("SELECT * FROM characters").fetchall()}
    assert set(people) == {
        "Elena Marsh",
        "Tobin",
        "Abel Reyes",
        "Will Hartley",
        "Margaret Hale",
    }  # one per person
    assert "Peg" in people["Margaret Hale"]["aliases"] and "Mrs. Marsh" in people["Elena Marsh"]["aliases"]
    assert people["Elena Marsh"]["appearance_description"].startswith("a tall woman with a grey braid")
    assert count(conn, "scene_characters") >= 12
    emotions = conn.execute(
        "SELECT c.name, e.* FROM character_emotions e JOIN characters c ON c.id = e.character_id "
        "JOIN scenes s ON s.id = e.scene_id JOIN chapters ch ON ch.id = s.chapter_id "
        "WHERE ch.chapter_number = 3 AND s.scene_number = 1 ORDER BY c.name"
    ).fetchall()
    assert [(e["name"], e["primary_emotion"]) for e in emotions] == [
        ("Elena Marsh", "sadness"),
        ("Margaret Hale", "anger"),
    ]
    assert emotions[1]["body_language_notes"] == "she slammed her fist on the table"
    transitions = conn.execute(
        "SELECT c.name, t.transition_type, t.transition_cause FROM emotion_transitions t "
        "JOIN characters c ON c.id = t.character_id ORDER BY c.name, t.created_at"
    ).fetchall()
    elena = [(t["transition_type"], t["transition_cause"]) for t in transitions if t["name"] == "Elena Marsh"]
    assert ("sudden", "joy → sadness") in elena


def test_re_extraction_is_idempotent_and_keeps_what_users_made(db, conn, settings, queue, story):
    extract_all(queue, story)
    run_jobs(db, settings)
    before = {
        t: count(conn, t)
        for t in (
            "scenes",
            "characters",
            "locations",
            "scene_characters",
            "character_emotions",
            "emotion_transitions",
        )
    }
    ids = [r["id"] for r in conn.execute("SELECT id FROM scenes ORDER BY id").fetchall()]
    again = extract_all(queue, story)
    run_jobs(db, settings)
    assert {t: count(conn, t) for t in before} == before
    assert [r["id"] for r in conn.execute("SELECT id FROM scenes ORDER BY id").fetchall()] == ids
    result = queue.get(again[0]).result
    assert result["changed"] is False and result["revision"] == 1 and result["counts"]["kept"] == 2

    # The chapter is rewritten: scene 1 keeps its text, scene 2 (with an image) and scene 3 (edited) go.
    chapter = story["chapters"][2]["id"]
    old = conn.execute(
        "SELECT id, scene_number FROM scenes WHERE chapter_id = %s ORDER BY scene_number", (chapter,)
    ).fetchall()
    conn.execute("INSERT INTO images (scene_id, file_path) VALUES (%s, 'x.png')", (old[1]["id"],))
    text = conn.execute("SELECT content FROM chapters WHERE id = %s", (chapter,)).fetchone()["content"]
    first_scene = text.split("* * *")[0].strip()
    books.add_chapter(
        conn, story["story_id"], first_scene + "\n\n* * *\n\nTobin ran to the village, delighted.", number=3
    )
    job = queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(chapter)}))
    run_jobs(db, settings)
    result = queue.get(job).result
    assert result["revision"] == 2 and result["counts"]["kept"] == 1 and result["counts"]["added"] == 1
    assert result["retired"] == [{"id": str(old[1]["id"]), "number": 2, "because": "images"}]
    retired = conn.execute("SELECT retired_at FROM scenes WHERE id = %s", (old[1]["id"],)).fetchone()
    assert retired["retired_at"] is not None  # kept with its image, out of the chapter's current scenes
    history = conn.execute(
        "SELECT revision FROM scene_extractions WHERE chapter_id = %s ORDER BY created_at", (chapter,)
    ).fetchall()
    assert [h["revision"] for h in history] == [1, 1, 2]


def test_illustrate_enqueues_one_generate_image_per_new_scene(db, conn, settings, queue, story):
    jobs = extract_all(queue, story, illustrate=True, steps=2)
    run_jobs(db, settings)
    images = conn.execute(
        "SELECT metadata, entity_id, user_id FROM processing_jobs WHERE job_type = 'generate_image'"
    ).fetchall()
    assert len(images) == 6 and all(j["metadata"]["steps"] == 2 for j in images)
    assert {str(j["entity_id"]) for j in images} == {
        r["id"] for r in (s for j in jobs for s in queue.get(j).result["added"])
    }
    assert all(j["user_id"] is not None for j in images)  # the story's owner
    extract_all(queue, story, illustrate=True)  # nothing new: no new illustration
    run_jobs(db, settings)
    assert count(conn, "processing_jobs WHERE job_type = 'generate_image'") == 6


def test_bad_input_fails_the_job_at_once_and_the_worker_goes_on(db, conn, settings, queue, story):
    scenes_before = count(conn, "scenes")
    bad = [
        queue.enqueue(NewJob("extract_scenes", m))
        for m in (
            {"chapter_id": "00000000-0000-0000-0000-000000000000"},
            {"chapter_id": "not-a-uuid"},
            {"chapter_id": str(story["chapters"][0]["id"]), "analyzer": "llm", "text_model": "nope"},
            {"chapter_id": str(story["chapters"][0]["id"]), "colour": "red"},
        )
    ]
    good = queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(story["chapters"][0]["id"])}))
    run_jobs(db, settings)
    failed = [queue.get(j) for j in bad]
    assert all(j.status == "failed" and j.attempts == 1 for j in failed)
    messages = [j.error_message for j in failed]
    assert "no chapter has id" in messages[0]
    assert "chapter_id: must be a valid UUID" in messages[1]
    assert "unknown text model 'nope'" in messages[2]
    assert "colour: unknown field" in messages[3]
    assert queue.get(good).status == "completed" and count(conn, "scenes") == scenes_before + 2


def test_validation_names_the_field():
    with pytest.raises(InvalidJob, match="analyzer: .*unknown text analyzer; available: builtin"):
        HANDLER.validate({"chapter_id": "00000000-0000-0000-0000-000000000001", "analyzer": "gpt9"})
    with pytest.raises(InvalidJob, match="chapter_id: required"):
        HANDLER.validate({})


def test_reingest_changes_nothing(conn, story):
    again = books.save_book(
        conn,
        read_file(SAMPLE),
        user_id=story["chapters"] and conn.execute("SELECT user_id FROM stories").fetchone()["user_id"],
    )
    assert again["story_id"] == story["story_id"] and again["unchanged"] and not again["created"]
    assert count(conn, "stories") == 1 and count(conn, "chapters") == 3
