"""The whole chain on the tiny model: ingest → extract_scenes (builtin) → generate_image, and prompts
that carry the extracted characters, emotions, transitions and `prompt: true` custom fields."""

from __future__ import annotations

import json
from pathlib import Path

from psycopg.types.json import Jsonb

from enchant_worker import books
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue
from enchant_worker.text.ingest import read_file
from tests.support.workers import WorkerThreads

from .conftest import STEPS

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"


def test_book_to_illustrated_scenes(db, conn, gen_settings):
    queue = JobQueue(conn)
    user = conn.execute("INSERT INTO users (email) VALUES ('a@example.org') RETURNING id").fetchone()["id"]
    story = books.save_book(conn, read_file(SAMPLE), user_id=user)
    # a custom field for the prompts, set on a character once extraction has made it
    field = conn.execute(
        "INSERT INTO custom_fields (story_id, field_name, field_type, applies_to, metadata) "
        "VALUES (%s, 'cloak colour', 'text', ARRAY['characters'], %s) RETURNING id",
        (story["story_id"], Jsonb({"prompt": True})),
    ).fetchone()["id"]
    for chapter in story["chapters"]:
        queue.enqueue(NewJob("extract_scenes", {"chapter_id": str(chapter["id"])}, user_id=user))
    workers = WorkerThreads(db, gen_settings)
    _, thread = workers.start(types=["extract_scenes"], burst=True)
    thread.join(60)
    elena = conn.execute("SELECT id FROM characters WHERE name = 'Elena Marsh'").fetchone()["id"]
    conn.execute(
        "INSERT INTO custom_field_values (custom_field_id, entity_type, entity_id, field_value) "
        "VALUES (%s, 'character', %s, '\"crimson\"')",
        (field, elena),
    )
    scene = conn.execute(
        "SELECT s.id FROM scenes s JOIN chapters c ON c.id = s.chapter_id "
        "WHERE c.chapter_number = 3 AND s.scene_number = 1"
    ).fetchone()["id"]
    job = queue.enqueue(
        NewJob(
            "generate_image",
            {"scene_id": str(scene), "steps": STEPS},
            entity_type="scene",
            entity_id=scene,
            user_id=user,
        )
    )
    workers = WorkerThreads(db, gen_settings)
    _, thread = workers.start(types=["generate_image"], burst=True)
    thread.join(120)
    done = queue.get(job)
    assert done.status == "completed", done.error_message
    prompt = done.result["prompt"]["prompt"]
    assert "Elena Marsh, a tall woman with a grey braid and an oilskin coat" in prompt
    assert "cloak colour: crimson" in prompt
    assert "sadness expression" in prompt and "anger expression" in prompt
    assert "sudden change of expression" in prompt  # joy in chapter 2 → sadness here
    sources = {p["source"].split(":")[0] for p in done.result["prompt"]["parts"]}
    assert {"character_emotions", "emotion_transitions", "custom_fields"} <= sources
    image = conn.execute("SELECT prompt, file_path FROM images WHERE job_id = %s", (job,)).fetchone()
    assert image["prompt"] == prompt
    assert (Path(gen_settings.storage) / image["file_path"]).is_file()
    assert json.dumps(done.result)  # the result is plain JSON
