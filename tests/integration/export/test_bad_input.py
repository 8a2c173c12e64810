"""The issue's bad inputs: each ends with a clear message, the worker alive and the data intact."""

from __future__ import annotations

import errno
import json
import tracemalloc
import zipfile

import pytest

from enchant_worker.domain.jobs import NewJob
from enchant_worker.export import epub_writer
from enchant_worker.export.run import ExportFailed
from enchant_worker.queue import JobQueue
from tests.support.stories import make_story, make_user
from tests.support.waiting import wait_for
from tests.support.workers import WorkerThreads


def partials(storage):
    return list((storage / "exports").glob(".partial-*"))


def test_a_story_without_images_exports_its_text_and_says_so(conn, storage, export):
    story = make_story(conn, storage, images=False)
    for fmt in ("epub", "html", "pdf"):
        result, path = export(story.story_id, fmt)
        assert result.illustrations == 0
        assert any("no illustrations yet" in n for n in result.notes), result.notes
    assert "no illustrations yet" in path.read_bytes().decode("latin-1") or result.notes


def test_missing_and_corrupt_image_files_are_skipped_with_a_note(conn, storage, story, export):
    story.image_paths[0].unlink()  # missing
    story.image_paths[1].write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # corrupt
    result, path = export(story.story_id, "epub")
    assert result.illustrations == 4
    skipped = [n for n in result.notes if "illustration skipped" in n]
    assert len(skipped) == 2 and "missing" in skipped[0] and "not a readable image" in skipped[1]
    with zipfile.ZipFile(path) as zf:
        assert "illustration skipped" in zf.read("EPUB/title.xhtml").decode()  # said in the book itself
    result, _ = export(story.story_id, "json")
    assert sum("file not included" in n for n in result.notes) == 1  # the corrupt one still travels as bytes


def test_a_title_with_characters_illegal_in_file_names(conn, storage, export):
    story = make_story(conn, storage, title="CON", images=False, chapters=1)
    assert export(story.story_id, "json")[0].filename == "CON_.json"
    story = make_story(conn, storage, title='a/b\\c:d*e?f"g<h>i|j\x01k. ', images=False, chapters=1)
    assert export(story.story_id, "json")[0].filename == "a_b_c_d_e_f_g_h_i_j_k.json"
    story = make_story(conn, storage, title="...", images=False, chapters=1)
    assert export(story.story_id, "epub")[0].filename == "story.epub"


def test_a_2000_chapter_story_exports_in_bounded_memory(conn, storage, export):
    user = make_user(conn)
    story_id = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'Long') RETURNING id", (user,)
    ).fetchone()["id"]
    conn.execute(
        """INSERT INTO chapters (story_id, chapter_number, title, content)
                    SELECT %s, n, 'Part ' || n, repeat('A sentence of the long story. ', 60) || E'\\n\\n' ||
                           repeat('Another paragraph follows here. ', 60)
                    FROM generate_series(1, 2000) n""",
        (story_id,),
    )
    for fmt in ("json", "html", "epub"):
        tracemalloc.start()
        result, path = export(story_id, fmt)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.chapters == 2000
        # The text of 2,000 chapters is ~7 MB; the export holds it and a chapter at a time, not the file.
        assert peak < 80 * 2**20, (fmt, peak)
    with zipfile.ZipFile(storage / result.file if result.file.endswith(".epub") else path) as zf:
        assert "EPUB/chapter-02000.xhtml" in zf.namelist()


def test_disk_full_fails_clearly_and_leaves_nothing_half_written(conn, storage, story, export, monkeypatch):
    def full(book, out, progress):
        out.write(b"PK\x03\x04 some bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(epub_writer, "write", full)
    before = (
        sorted(p.name for p in (storage / "exports").rglob("*")) if (storage / "exports").exists() else []
    )
    with pytest.raises(
        ExportFailed, match="storage disk is full .*free space under .* retry the job. Nothing was kept"
    ):
        export(story.story_id, "epub")
    assert sorted(p.name for p in (storage / "exports").rglob("*")) == before
    assert (
        conn.execute("SELECT count(*) AS n FROM chapters WHERE story_id = %s", (story.story_id,)).fetchone()[
            "n"
        ]
        == 3
    )


def test_a_cancelled_export_removes_its_partial_file_and_the_worker_goes_on(db, settings, conn, storage):
    story = make_story(conn, storage, chapters=6, scenes_per_chapter=2, image_size=(320, 200))
    queue = JobQueue(conn)
    job_id = queue.enqueue(
        NewJob(
            "export_story",
            {
                "story_id": str(story.story_id),
                "format": "video",
                "video_resolution": "480p",
                "scene_seconds": 6,
            },
            entity_type="story",
            entity_id=story.story_id,
            user_id=story.user_id,
        )
    )
    workers = WorkerThreads(db, settings)
    try:
        workers.start(types=["export_story", "noop"])
        wait_for(lambda: partials(storage), timeout=30, what="the export to start writing")
        assert queue.cancel(job_id) == "processing"
        wait_for(lambda: queue.get(job_id).status.value == "cancelled", timeout=30, what="the cancellation")
        assert partials(storage) == [] and not list((storage / "exports").rglob("*.mp4"))
        after = queue.enqueue(NewJob("export_story", {"story_id": str(story.story_id), "format": "json"}))
        wait_for(lambda: queue.get(after).status.value == "completed", timeout=30, what="the next export")
    finally:
        workers.stop_all()


def test_an_export_of_a_deleted_story_fails_at_once_naming_it(db, settings, conn, storage):
    queue = JobQueue(conn)
    missing = "00000000-0000-0000-0000-000000000001"
    job_id = queue.enqueue(NewJob("export_story", {"story_id": missing, "format": "pdf"}))
    workers = WorkerThreads(db, settings)
    try:
        workers.start(types=["export_story"])
        wait_for(lambda: queue.get(job_id).status.value == "failed", timeout=30)
    finally:
        workers.stop_all()
    job = queue.get(job_id)
    assert f"story_id: no story has id {missing}" in job.error_message and job.attempts == 1


def test_bad_metadata_is_refused_naming_the_field(db, settings, conn):
    from enchant_worker.errors import InvalidJob
    from enchant_worker.handlers.export_story import HANDLER

    with pytest.raises(InvalidJob, match="format: must be 'pdf', 'epub', 'html', 'json' or 'video'"):
        HANDLER.validate({"story_id": "00000000-0000-0000-0000-000000000001", "format": "docx"})
    with pytest.raises(InvalidJob, match="layout"):
        HANDLER.validate({"story_id": "00000000-0000-0000-0000-000000000001", "format": "pdf", "layout": "x"})
    spec = HANDLER.validate(
        {
            "story_id": "00000000-0000-0000-0000-000000000001",
            "format": "pdf",
            "includeImages": False,
            "imageQuality": "high",
        }
    )
    assert spec.include_images is False and spec.image_quality == "high"
    assert json.loads(spec.model_dump_json())["story_id"] == "00000000-0000-0000-0000-000000000001"
