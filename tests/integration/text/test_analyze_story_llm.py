"""analyze_story with the llm analyzer on the tiny random text model, through the queue: its constrained
answers parse, every llm score is stored with its confidence and `certain: false`, never as builtin's."""

from __future__ import annotations

import pytest

from enchant_worker import books
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from enchant_worker.text.ingest import read_book
from tests.integration.text.test_llm_analyzer import llm_settings, text_models_dir  # noqa: F401 (fixtures)
from tests.support.workers import WorkerThreads

TEXT = (
    "Chapter 1\n\nMara Quinn climbed the tower, afraid of the storm. Tobin waited below, terrified.\n\n* * *\n\n"
    "The next morning Mara laughed in the bright kitchen, delighted, and Tobin grinned at her."
)


@pytest.mark.slow  # the constraint is checked at every generated token
def test_llm_analysis_through_the_queue(db, conn, llm_settings):  # noqa: F811
    story = books.save_book(conn, read_book(TEXT.encode()), user_id=None)
    queue = JobQueue(conn)
    queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(story["chapters"][0]["id"])}))
    job = queue.enqueue(
        NewJob("analyze_story", {"story_id": str(story["story_id"]), "analyzer": "llm"}, priority=9)
    )  # after the extraction
    _, thread = WorkerThreads(db, llm_settings).start(types=["extract_scenes", "analyze_story"], burst=True)
    thread.join(300)
    done = queue.get(job)
    assert done.status == "completed", done.error_message
    assert done.result["analyzer"] == "llm" and done.result["counts"]["scenes"] == 2
    rows = conn.execute(
        "SELECT metadata_value AS v FROM entity_metadata WHERE entity_type = 'scene'"
    ).fetchall()
    assert len(rows) == 2
    for row in rows:
        value = row["v"]
        if value["source"] == "llm":  # a random model's answer parsed: kept with its confidence, not certain
            assert value["certain"] is False and value["confidence"] in (0.25, 0.6, 0.9)
            assert value["tentative"] is (value["confidence"] < 0.5)
            assert all(value["evidence"][f]["llm_reason"] for f in ("pacing", "visual_potential"))
        else:  # cut at the token limit: builtin's kept and said so
            assert "unusable" in " ".join(value["notes"])
    story_doc = conn.execute(
        "SELECT metadata_value AS v FROM entity_metadata WHERE entity_type = 'story'"
    ).fetchone()["v"]
    assert story_doc["text_model"] == "tiny-text"
    fixes = story_doc["enhancement"]["auto_fixes"]
    assert all(f["certain"] is False and f["source"] == "llm:tiny-text" for f in fixes)
    assert "builtin analyzer proposes no text edits" not in story_doc["enhancement"]["auto_fixes_note"]
