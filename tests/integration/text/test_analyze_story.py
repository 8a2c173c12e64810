"""analyze_story through the queue and a real worker on the sample book: scene scores in entity_metadata,
story figures in story_metrics, re-running on unchanged text reuses them, a changed chapter recomputes,
and bad stories (no chapters, no scenes, one scene, one word) are analysed with notes, the worker intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from enchant_worker import books
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from enchant_worker.text.ingest import read_file
from enchant_worker.text.quality import SCORE_FIELDS
from tests.support.workers import WorkerThreads

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


@pytest.fixture
def author(conn):
    return conn.execute("INSERT INTO users (email) VALUES ('author@example.org') RETURNING id").fetchone()[
        "id"
    ]


def run_jobs(db, settings, types=("extract_scenes", "analyze_story")):
    workers = WorkerThreads(db, settings)
    _, thread = workers.start(types=list(types), burst=True)
    thread.join(120)
    assert not thread.is_alive(), "the worker did not finish"


def analyse(queue, db, settings, story_id, **metadata):
    job = queue.enqueue(
        NewJob(
            "analyze_story", {"story_id": str(story_id), **metadata}, entity_type="story", entity_id=story_id
        )
    )
    run_jobs(db, settings, ("analyze_story",))
    done = queue.get(job)
    assert done.status == "completed", done.error_message
    return done.result


def metrics(conn, story_id):
    return conn.execute(
        "SELECT metric_type, metric_value, metadata FROM story_metrics WHERE story_id = %s "
        "ORDER BY recorded_at, metric_type",
        (story_id,),
    ).fetchall()


def test_sample_book_is_scored_stored_and_reused(db, conn, settings, queue, author):
    story = books.save_book(conn, read_file(SAMPLE), user_id=author)
    for chapter in story["chapters"]:
        queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(chapter["id"])}))
    run_jobs(db, settings, ("extract_scenes",))
    result = analyse(queue, db, settings, story["story_id"])
    assert result["reused"] is False and result["counts"] == {
        "chapters": 3,
        "scenes": 6,
        "words": 516,
        "characters": 5,
    }
    assert all(0 <= result["scores"][f] <= 1 for f in ("overall", *SCORE_FIELDS))
    scenes = conn.execute(
        "SELECT entity_id, metadata_value AS v FROM entity_metadata WHERE entity_type = 'scene' "
        "AND metadata_key = 'analysis.quality'"
    ).fetchall()
    assert len(scenes) == 6
    for row in scenes:
        value = row["v"]
        assert set(SCORE_FIELDS) <= set(value) and value["source"] == "builtin" and value["certain"] is True
        assert all(value["evidence"][f]["why"] for f in SCORE_FIELDS)
        assert value["content_hash"] and value["story_hash"] == result["content_hash"]
    first = metrics(conn, story["story_id"])
    kinds = {m["metric_type"] for m in first}
    assert {"quality_overall", "quality_pacing", "character_development_score", "words", "scenes"} <= kinds
    assert all(m["metadata"]["content_hash"] == result["content_hash"] for m in first)
    # unchanged text: reused, nothing written
    again = analyse(queue, db, settings, story["story_id"])
    assert again["reused"] is True and again["content_hash"] == result["content_hash"]
    assert len(metrics(conn, story["story_id"])) == len(first)
    # force: recomputed, same figures, a second set of metric rows
    forced = analyse(queue, db, settings, story["story_id"], force=True)
    assert forced["reused"] is False and forced["scores"] == result["scores"]
    assert len(metrics(conn, story["story_id"])) == 2 * len(first)
    # a chapter changed (and re-extracted): a new content hash
    chapter = story["chapters"][2]
    conn.execute(
        "UPDATE chapters SET content = content || %s, content_hash = 'changed' WHERE id = %s",
        ("\n\nElena wept, heartbroken, and then she laughed, delighted at the dawn.", chapter["id"]),
    )
    queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(chapter["id"])}))
    run_jobs(db, settings, ("extract_scenes",))
    changed = analyse(queue, db, settings, story["story_id"])
    assert changed["reused"] is False and changed["content_hash"] != result["content_hash"]


def story_of(conn, author, chapters: list[str], title="Bad input"):
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, %s) RETURNING id", (author, title)
    ).fetchone()["id"]
    for number, text in enumerate(chapters, start=1):
        conn.execute(
            "INSERT INTO chapters (story_id, chapter_number, content) VALUES (%s, %s, %s)",
            (story, number, text),
        )
    return story


@pytest.mark.parametrize(
    ("chapters", "note", "scenes"),
    [
        ([], "the story has no chapters", 0),
        (["", "   "], "the story has no scenes", 0),
        (["Elena Marsh climbed the tower at dawn, afraid of the storm, and lit the great lamp."], None, 1),
        (["Storm."], None, 1),
    ],
)
def test_bad_stories_are_analysed_with_notes(db, conn, settings, queue, author, chapters, note, scenes):
    story_id = story_of(conn, author, chapters)
    for chapter in conn.execute("SELECT id FROM chapters WHERE story_id = %s", (story_id,)).fetchall():
        queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(chapter["id"])}))
    run_jobs(db, settings, ("extract_scenes",))
    result = analyse(queue, db, settings, story_id)
    assert result["counts"]["scenes"] == scenes
    if note:
        assert any(note in n for n in result["notes"]), result["notes"]
    assert all(0 <= v <= 1 for v in result["scores"].values())
    if chapters == [
        "Storm."
    ]:  # one word: too short to judge, said in the scene's stored score, scores held low
        [scene] = conn.execute(
            "SELECT metadata_value AS v FROM entity_metadata WHERE entity_type = 'scene'"
        ).fetchall()
        assert "too short to judge" in scene["v"]["notes"][0] and scene["v"]["overall"] < 0.35
        assert result["scores"]["overall"] < 0.35
    # the worker is intact: a second job runs
    assert analyse(queue, db, settings, story_id)["reused"] is True
