"""The scene-extraction routes (v1 `scene_extraction`) with two users: each route works for the story's
owner and refuses the other user (403) and unknown ids (404)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from enchant_worker.domain.jobs import NewJob  # noqa: F401
from tests.support.workers import WorkerThreads
from tests.unit.text.epubs import make_epub, with_drm

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"
MISSING = "00000000-0000-0000-0000-000000000009"


@pytest.fixture
def story(client, alice) -> dict:
    response = client.post(
        "/v1/stories", headers=alice.headers, json={"text": SAMPLE.read_text(), "format": "markdown"}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def extracted(client, alice, story, db, settings) -> dict:
    for chapter in story["chapters"]:
        r = client.post(f"/v1/chapters/{chapter['id']}/extract-scenes", headers=alice.headers, json={})
        assert r.status_code == 202, r.text
    workers = WorkerThreads(db, settings)
    _, thread = workers.start(types=["extract_scenes"], burst=True)
    thread.join(60)
    return story


def test_create_story_from_text_is_idempotent(client, alice, bob, story):
    assert story["created"] and story["title"] == "The Lamp at Marrow Point"
    assert [c["status"] for c in story["chapters"]] == ["added"] * 3
    again = client.post(
        "/v1/stories", headers=alice.headers, json={"text": SAMPLE.read_text(), "format": "markdown"}
    )
    assert (
        again.status_code == 200
        and again.json()["unchanged"]
        and again.json()["story_id"] == story["story_id"]
    )
    listed = client.get(f"/v1/stories/{story['story_id']}/chapters", headers=alice.headers).json()
    assert [c["chapter_number"] for c in listed] == [1, 2, 3]
    assert client.get(f"/v1/stories/{story['story_id']}/chapters", headers=bob.headers).status_code == 403
    assert client.get(f"/v1/stories/{MISSING}/chapters", headers=alice.headers).status_code == 404
    assert client.get(f"/v1/stories/{story['story_id']}/chapters").status_code == 401
    # bob's own copy of the same book is his own story
    mine = client.post("/v2/stories", headers=bob.headers, json={"text": SAMPLE.read_text()}).json()
    assert mine["created"] and mine["story_id"] != story["story_id"]


def test_upload_epub_and_bad_files(client, alice, tmp_path, app):
    epub = make_epub(
        tmp_path / "b.epub",
        [
            (
                "The Storm",
                "Mara climbed the stairs of the tower as the wind rose "
                "and the great lamp flickered above the black sea.",
            )
        ],
    )
    r = client.post(
        "/v1/stories/upload",
        headers=alice.headers,
        files={"file": ("b.epub", epub.read_bytes(), "application/epub+zip")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["book"]["format"] == "epub" and r.json()["chapters"][0]["title"] == "The Storm"
    drm = with_drm(epub, tmp_path / "drm.epub")
    for name, data, message in (
        ("drm.epub", drm.read_bytes(), "DRM-protected"),
        ("cut.epub", epub.read_bytes()[:300], "broken"),
        ("empty.txt", b"", "empty"),
        ("x.bin", b"\x00\x01\x02binary", "looks binary"),
    ):
        r = client.post("/v1/stories/upload", headers=alice.headers, files={"file": (name, data)})
        assert r.status_code == 422 and message in r.json()["detail"][0]["msg"], (name, r.text)
    app.state.api.settings = app.state.api.settings.model_copy(update={"ingest_max_bytes": 2048})
    r = client.post("/v1/stories/upload", headers=alice.headers, files={"file": ("big.txt", b"word " * 1000)})
    assert r.status_code == 413 and "ingest limit of 2,048 bytes" in r.json()["detail"]


def test_add_chapters(client, alice, bob, story):
    sid = story["story_id"]
    r = client.post(
        f"/v1/stories/{sid}/chapters", headers=alice.headers, json={"text": "Tobin slept.", "title": "Four"}
    )
    assert r.status_code == 201 and r.json()["number"] == 4
    again = client.post(f"/v1/stories/{sid}/chapters", headers=alice.headers, json={"text": "Tobin slept."})
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    assert (
        client.post(f"/v1/stories/{sid}/chapters", headers=bob.headers, json={"text": "x"}).status_code == 403
    )
    r = client.post(
        f"/v1/stories/{sid}/chapters/upload",
        headers=alice.headers,
        files={"file": ("more.txt", b"Chapter 1\n\nPeg baked bread.\n\nChapter 2\n\nTobin ate it.")},
    )
    assert r.status_code == 201 and [c["number"] for c in r.json()["chapters"]] == [5, 6]
    assert (
        client.post(
            f"/v1/stories/{sid}/chapters/upload", headers=bob.headers, files={"file": ("x.txt", b"hello")}
        ).status_code
        == 403
    )


def test_extract_and_read_scenes(client, alice, bob, extracted):
    chapter = extracted["chapters"][2]["id"]
    assert (
        client.post(f"/v1/chapters/{chapter}/extract-scenes", headers=bob.headers, json={}).status_code == 403
    )
    assert (
        client.post(f"/v1/chapters/{MISSING}/extract-scenes", headers=alice.headers, json={}).status_code
        == 404
    )
    r = client.post(
        f"/v1/chapters/{chapter}/extract-scenes",
        headers=alice.headers,
        json={"analyzer": "llm", "text_model": "nope"},
    )
    assert r.status_code == 422 and "unknown text model 'nope'" in r.text
    r = client.post(
        f"/v1/chapters/{chapter}/extract-scenes", headers=alice.headers, json={"analyzer": "gpt9"}
    )
    assert r.status_code == 422 and "unknown text analyzer" in r.text
    info = client.get(f"/v1/chapters/{chapter}", headers=alice.headers).json()
    assert info["extraction"]["revision"] == 1 and info["content"].startswith("That afternoon")
    assert client.get(f"/v1/chapters/{chapter}", headers=bob.headers).status_code == 403
    scenes = client.get(f"/v1/chapters/{chapter}/scenes", headers=alice.headers).json()
    assert [s["scene_number"] for s in scenes] == [1, 2]
    first = scenes[0]
    emotions = {c["name"]: c["emotion"]["primary_emotion"] for c in first["characters"]}
    assert emotions == {"Elena Marsh": "sadness", "Margaret Hale": "anger"}
    elena = next(c for c in first["characters"] if c["name"] == "Elena Marsh")
    assert elena["transition_in"]["transition_type"] == "sudden"
    assert client.get(f"/v1/chapters/{chapter}/scenes", headers=bob.headers).status_code == 403
    one = client.get(f"/v1/scenes/{first['id']}", headers=alice.headers)
    assert one.status_code == 200 and one.json()["summary"]
    assert client.get(f"/v1/scenes/{first['id']}", headers=bob.headers).status_code == 403
    assert client.get(f"/v1/scenes/{MISSING}", headers=alice.headers).status_code == 404
    people = client.get(f"/v1/scenes/{first['id']}/characters", headers=alice.headers).json()
    assert {p["name"] for p in people} == {"Elena Marsh", "Margaret Hale"}
    assert client.get(f"/v1/scenes/{first['id']}/characters", headers=bob.headers).status_code == 403


def test_characters_list_and_correct(client, alice, bob, extracted):
    sid = extracted["story_id"]
    people = {c["name"]: c for c in client.get(f"/v1/stories/{sid}/characters", headers=alice.headers).json()}
    assert "Peg" in people["Margaret Hale"]["aliases"] and people["Tobin"]["scene_count"] >= 2
    assert client.get(f"/v1/stories/{sid}/characters", headers=bob.headers).status_code == 403
    tobin = people["Tobin"]["id"]
    r = client.patch(f"/v1/characters/{tobin}", headers=alice.headers, json={"aliases": ["the boy"]})
    assert r.status_code == 200 and r.json()["aliases"] == ["the boy"]
    assert client.patch(f"/v1/characters/{tobin}", headers=bob.headers, json={"name": "X"}).status_code == 403


def test_branches(client, alice, bob, extracted, conn):
    sid = extracted["story_id"]
    r = client.post(
        f"/v1/stories/{sid}/branches",
        headers=alice.headers,
        json={"branch_name": "The lighthouse stays", "branch_point_chapter": 3},
    )
    assert r.status_code == 201
    branch = r.json()["id"]
    assert (
        client.post(
            f"/v1/stories/{sid}/branches",
            headers=bob.headers,
            json={"branch_name": "x", "branch_point_chapter": 1},
        ).status_code
        == 403
    )
    assert [b["id"] for b in client.get(f"/v1/stories/{sid}/branches", headers=alice.headers).json()] == [
        branch
    ]
    assert client.get(f"/v1/stories/{sid}/branches", headers=bob.headers).status_code == 403
    r = client.patch(f"/v1/branches/{branch}", headers=alice.headers, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (
        client.patch(f"/v1/branches/{branch}", headers=bob.headers, json={"is_active": True}).status_code
        == 403
    )
    elena = conn.execute("SELECT id FROM characters WHERE name = 'Elena Marsh'").fetchone()["id"]
    early = client.post(
        f"/v1/branches/{branch}/character-states",
        headers=alice.headers,
        json={"character_id": str(elena), "chapter_number": 2, "appearance_description": "young"},
    )
    assert early.status_code == 422 and "the branch starts at chapter 3" in early.text
    r = client.post(
        f"/v1/branches/{branch}/character-states",
        headers=alice.headers,
        json={
            "character_id": str(elena),
            "chapter_number": 3,
            "appearance_description": "in a red coat",
            "emotional_state": "defiant",
        },
    )
    assert r.status_code == 201 and r.json()["character_name"] == "Elena Marsh"
    assert client.get(f"/v1/branches/{branch}/character-states", headers=bob.headers).status_code == 403
    assert len(client.get(f"/v1/branches/{branch}/character-states", headers=alice.headers).json()) == 1
    assert client.patch(f"/v1/branches/{MISSING}", headers=alice.headers, json={}).status_code == 404


def test_story_lora_styles(client, alice, bob, extracted, conn):
    sid = extracted["story_id"]
    lora = conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url, status, strength_range) "
        "VALUES (%s, 'ink', 'loras/ink.safetensors', 'ready', '{\"min\": 0.2, \"max\": 0.9}') "
        "RETURNING id",
        (alice.user_id,),
    ).fetchone()["id"]
    scene = conn.execute("SELECT id FROM scenes LIMIT 1").fetchone()["id"]
    r = client.post(
        f"/v1/stories/{sid}/loras",
        headers=alice.headers,
        json={"lora_model_id": str(lora), "strength": 0.7, "apply_to_scenes": [str(scene)]},
    )
    assert (
        r.status_code == 201
        and r.json()["lora_name"] == "ink"
        and r.json()["apply_to_scenes"] == [str(scene)]
    )
    setting = r.json()["id"]
    too_strong = client.post(
        f"/v1/stories/{sid}/loras", headers=alice.headers, json={"lora_model_id": str(lora), "strength": 1.0}
    )
    assert too_strong.status_code == 422 and "from 0.2 to 0.9" in too_strong.text
    bad_scene = client.post(
        f"/v1/stories/{sid}/loras",
        headers=alice.headers,
        json={"lora_model_id": str(lora), "apply_to_scenes": [MISSING]},
    )
    assert bad_scene.status_code == 422 and "not scenes of this story" in bad_scene.text
    assert (
        client.post(
            f"/v1/stories/{sid}/loras", headers=bob.headers, json={"lora_model_id": str(lora)}
        ).status_code
        == 403
    )
    assert client.get(f"/v1/stories/{sid}/loras", headers=bob.headers).status_code == 403
    r = client.patch(
        f"/v1/stories/{sid}/loras/{setting}", headers=alice.headers, json={"apply_to_scenes": ["all"]}
    )
    assert r.status_code == 200 and r.json()["apply_to_scenes"] == ["all"]
    assert client.patch(f"/v1/stories/{sid}/loras/{setting}", headers=bob.headers, json={}).status_code == 403
    assert client.delete(f"/v1/stories/{sid}/loras/{setting}", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/stories/{sid}/loras/{setting}", headers=alice.headers).status_code == 204
    assert client.get(f"/v1/stories/{sid}/loras", headers=alice.headers).json() == []


def test_custom_fields_and_values(client, alice, bob, extracted, conn):
    sid = extracted["story_id"]
    body = {
        "field_name": "cloak colour",
        "field_type": "text",
        "applies_to": ["characters"],
        "metadata": {"prompt": True},
    }
    r = client.post(f"/v1/stories/{sid}/custom-fields", headers=alice.headers, json=body)
    assert r.status_code == 201
    field = r.json()["id"]
    assert (
        client.post(f"/v1/stories/{sid}/custom-fields", headers=alice.headers, json=body).status_code == 409
    )
    assert (
        client.post(
            f"/v1/stories/{sid}/custom-fields", headers=bob.headers, json={**body, "field_name": "x"}
        ).status_code
        == 403
    )
    bad_default = client.post(
        f"/v1/stories/{sid}/custom-fields",
        headers=alice.headers,
        json={
            "field_name": "age",
            "field_type": "number",
            "applies_to": ["characters"],
            "default_value": "old",
        },
    )
    assert bad_default.status_code == 422 and "custom field 'age' is of type number" in bad_default.text
    elena = conn.execute("SELECT id FROM characters WHERE name = 'Elena Marsh'").fetchone()["id"]
    wrong = client.put(
        f"/v1/custom-fields/{field}/values",
        headers=alice.headers,
        json={"entity_type": "character", "entity_id": str(elena), "value": 42},
    )
    assert wrong.status_code == 422
    assert (
        wrong.json()["detail"][0]["msg"] == "value: custom field 'cloak colour' is of type text; got int '42'"
    )
    scene = conn.execute("SELECT id FROM scenes LIMIT 1").fetchone()["id"]
    not_applied = client.put(
        f"/v1/custom-fields/{field}/values",
        headers=alice.headers,
        json={"entity_type": "scene", "entity_id": str(scene), "value": "red"},
    )
    assert not_applied.status_code == 422 and "applies to characters" in not_applied.text
    ok = client.put(
        f"/v1/custom-fields/{field}/values",
        headers=alice.headers,
        json={"entity_type": "character", "entity_id": str(elena), "value": "crimson"},
    )
    assert ok.status_code == 200
    assert (
        client.put(
            f"/v1/custom-fields/{field}/values",
            headers=bob.headers,
            json={"entity_type": "character", "entity_id": str(elena), "value": "x"},
        ).status_code
        == 403
    )
    people = {c["name"]: c for c in client.get(f"/v1/stories/{sid}/characters", headers=alice.headers).json()}
    assert people["Elena Marsh"]["custom_fields"][0]["value"] == "crimson"
    assert client.get(f"/v1/stories/{sid}/custom-fields", headers=bob.headers).status_code == 403
    assert client.patch(f"/v1/custom-fields/{field}", headers=bob.headers, json={}).status_code == 403
    assert (
        client.delete(
            f"/v1/custom-fields/{field}/values/character/{elena}", headers=alice.headers
        ).status_code
        == 204
    )
    assert client.delete(f"/v1/custom-fields/{field}", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/custom-fields/{field}", headers=alice.headers).status_code == 204


def test_templates_validate_metadata(client, alice, bob, extracted, conn):
    sid = extracted["story_id"]
    invalid = client.post(
        f"/v1/stories/{sid}/templates",
        headers=alice.headers,
        json={"entity_type": "character", "template_name": "bad", "template_schema": {"type": "person"}},
    )
    assert invalid.status_code == 422 and "not a valid JSON Schema" in invalid.text
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["age"]}
    r = client.post(
        f"/v1/stories/{sid}/templates",
        headers=alice.headers,
        json={"entity_type": "character", "template_name": "person", "template_schema": schema},
    )
    assert r.status_code == 201
    assert (
        client.post(
            f"/v1/stories/{sid}/templates",
            headers=bob.headers,
            json={"entity_type": "character", "template_name": "x", "template_schema": {}},
        ).status_code
        == 403
    )
    elena = conn.execute("SELECT id FROM characters WHERE name = 'Elena Marsh'").fetchone()["id"]
    url = f"/v1/entities/character/{elena}/metadata"
    wrong = client.put(f"{url}/age", headers=alice.headers, json={"value": "sixty"})
    assert wrong.status_code == 422 and "template 'person' at age" in wrong.text
    missing = client.put(f"{url}/hobby", headers=alice.headers, json={"value": "sailing"})
    assert missing.status_code == 422 and "'age' is a required property" in missing.text
    assert client.put(f"{url}/age", headers=alice.headers, json={"value": 61}).json() == {"age": 61}
    assert client.put(f"{url}/hobby", headers=alice.headers, json={"value": "sailing"}).status_code == 200
    assert client.get(url, headers=alice.headers).json() == {"age": 61, "hobby": "sailing"}
    assert client.get(url, headers=bob.headers).status_code == 403
    assert client.put(f"{url}/age", headers=bob.headers, json={"value": 1}).status_code == 403
    assert client.delete(f"{url}/age", headers=alice.headers).status_code == 422  # required by the template
    assert client.get(f"/v1/stories/{sid}/templates", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/templates/{r.json()['id']}", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/templates/{r.json()['id']}", headers=alice.headers).status_code == 204


def test_a_viewer_reads_but_does_not_write(client, alice, make_user, story, conn):
    carol = make_user("carol@example.org")
    conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status) VALUES (%s, %s, 'viewer', "
        "'accepted')",
        (story["story_id"], carol.user_id),
    )
    sid = story["story_id"]
    assert client.get(f"/v1/stories/{sid}/chapters", headers=carol.headers).status_code == 200
    assert (
        client.post(f"/v1/stories/{sid}/chapters", headers=carol.headers, json={"text": "x"}).status_code
        == 403
    )
    chapter = story["chapters"][0]["id"]
    assert (
        client.post(f"/v1/chapters/{chapter}/extract-scenes", headers=carol.headers, json={}).status_code
        == 403
    )


def test_story_upload_with_extract_queues_jobs(client, alice):
    r = client.post(
        "/v1/stories?extract=true", headers=alice.headers, json={"text": "Chapter 1\n\nMara smiled."}
    )
    assert r.status_code == 201 and len(r.json()["jobs"]) == 1
    job = client.get(f"/v1/jobs/{r.json()['jobs'][0]}", headers=alice.headers).json()
    assert job["job_type"] == "extract_scenes" and job["entity_type"] == "chapter"
    assert str(uuid.UUID(job["metadata"]["chapter_id"])) == r.json()["chapters"][0]["id"]


def test_locations_and_global_templates(client, alice, bob, admin, extracted):
    sid = extracted["story_id"]
    places = {p["name"]: p for p in client.get(f"/v1/stories/{sid}/locations", headers=alice.headers).json()}
    assert {"Marrow Point", "the harbour", "the lighthouse"} <= set(places)
    assert client.get(f"/v1/stories/{sid}/locations", headers=bob.headers).status_code == 403
    body = {"entity_type": "scene", "template_name": "any", "template_schema": {"type": "object"}}
    assert client.post("/v1/templates", headers=alice.headers, json=body).status_code == 403
    r = client.post("/v1/templates", headers=admin.headers, json=body)
    assert r.status_code == 201 and r.json()["story_id"] is None
    listed = client.get(f"/v1/stories/{sid}/templates", headers=alice.headers).json()
    assert [t["template_name"] for t in listed] == ["any"]  # global templates apply to every story
    assert client.delete(f"/v1/templates/{r.json()['id']}", headers=alice.headers).status_code == 403
    assert client.delete(f"/v1/templates/{r.json()['id']}", headers=admin.headers).status_code == 204


def test_an_edited_scene_survives_re_extraction(client, alice, bob, extracted, db, settings):
    chapter = extracted["chapters"][0]["id"]
    scene = client.get(f"/v1/chapters/{chapter}/scenes", headers=alice.headers).json()[0]
    assert (
        client.patch(f"/v1/scenes/{scene['id']}", headers=bob.headers, json={"title": "x"}).status_code == 403
    )
    r = client.patch(
        f"/v1/scenes/{scene['id']}",
        headers=alice.headers,
        json={"title": "The lamp fails", "comment": "better title"},
    )
    assert r.status_code == 200 and r.json()["title"] == "The lamp fails"
    # the chapter is replaced by text without that scene: the edited scene is retired, not deleted
    sid = extracted["story_id"]
    client.post(
        f"/v1/stories/{sid}/chapters",
        headers=alice.headers,
        json={"text": "Tobin ran home through the rain, laughing.", "number": 1},
    )
    job = client.post(f"/v1/chapters/{chapter}/extract-scenes", headers=alice.headers, json={}).json()[
        "job_id"
    ]
    workers = WorkerThreads(db, settings)
    _, thread = workers.start(types=["extract_scenes"], burst=True)
    thread.join(60)
    result = client.get(f"/v1/jobs/{job}", headers=alice.headers).json()["result"]
    assert {"id": scene["id"], "number": 1, "because": "edits"} in result["retired"]
    kept = client.get(f"/v1/scenes/{scene['id']}", headers=alice.headers).json()
    assert kept["title"] == "The lamp fails" and kept["retired_at"] is not None
