"""Exports over the API: the sample book in all five formats through the queue and a worker, downloads
with CDN-ready headers, signed links, and who may do what (a second user gets 403/404 everywhere)."""

from __future__ import annotations

import json
import subprocess
import time

import jsonschema
import pytest

from enchant_worker.api.serving import signature
from enchant_worker.export.json_writer import schema
from tests.integration.export.conftest import epubcheck, tool
from tests.support.stories import make_story
from tests.support.waiting import wait_for
from tests.support.workers import WorkerThreads

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def workers(db, settings):
    started = WorkerThreads(db, settings)
    yield started
    started.stop_all()


@pytest.fixture
def alice_story(conn, settings, alice):
    settings.storage.mkdir(parents=True, exist_ok=True)
    return make_story(
        conn,
        settings.storage,
        user_id=alice.user_id,
        title='Fox/Heron: "Night" <1>?',
        chapters=2,
        scenes_per_chapter=2,
    )


def finished(client, caller, export_id):
    body = client.get(f"/v1/exports/{export_id}", headers=caller.headers).json()
    return body if body["status"] in ("completed", "failed", "cancelled") else None


def test_the_sample_book_in_all_five_formats_through_the_queue(client, alice, alice_story, workers, tmp_path):
    options = {
        "pdf": {},
        "epub": {},
        "html": {"layout": "gallery"},
        "json": {"includeImages": True},
        "video": {"video_resolution": "480p", "scene_seconds": 1.0, "image_quality": "thumbnail"},
    }
    ids = {}
    for fmt, extra in options.items():
        r = client.post(
            f"/v1/stories/{alice_story.story_id}/exports",
            headers=alice.headers,
            json={"format": fmt, **extra},
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending" and r.json()["file_url"] is None
        ids[fmt] = r.json()["id"]
    workers.start(types=["export_story"])
    files = {}
    for fmt, export_id in ids.items():
        body = wait_for(lambda i=export_id: finished(client, alice, i), timeout=90, what=f"the {fmt} export")
        assert body["status"] == "completed", body
        assert body["progress_percent"] == 100 and body["file_url"] == f"/v1/exports/{export_id}/file"
        r = client.get(body["file_url"], headers=alice.headers)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert r.headers["etag"] == f'"{body["sha256"]}"'
        disposition = r.headers["content-disposition"]
        assert (
            disposition.startswith('attachment; filename="Fox_Heron_ _Night_ _1.')
            and "filename*=UTF-8''" in disposition
        )
        again = client.get(body["file_url"], headers={**alice.headers, "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        path = tmp_path / f"book.{fmt}"
        path.write_bytes(r.content)
        files[fmt] = path
    # The outside tools on what came out of the queue.
    epubcheck(files["epub"])
    assert subprocess.run([tool("qpdf"), "--check", str(files["pdf"])], capture_output=True).returncode == 0
    jsonschema.Draft202012Validator(schema()).validate(json.loads(files["json"].read_text()))
    assert b"data:image/jpeg;base64," in files["html"].read_bytes()
    av = pytest.importorskip("av")
    with av.open(str(files["video"])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    # Range requests for video (seeking in a player or through a CDN).
    r = client.get(f"/v1/exports/{ids['video']}/file", headers={**alice.headers, "Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["content-range"].startswith("bytes 0-99/")
    listed = client.get(f"/v1/stories/{alice_story.story_id}/exports", headers=alice.headers).json()
    assert sorted(e["format"] for e in listed["items"]) == sorted(options) and listed["next_cursor"] is None
    first = client.get(f"/v1/stories/{alice_story.story_id}/exports?limit=1", headers=alice.headers).json()
    rest = client.get(
        f"/v1/stories/{alice_story.story_id}/exports",
        headers=alice.headers,
        params={"cursor": first["next_cursor"]},
    ).json()
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in listed["items"]]


def test_every_export_route_refuses_another_users_story(client, alice, bob, alice_story, conn, workers):
    story = alice_story.story_id
    r = client.post(f"/v1/stories/{story}/exports", headers=bob.headers, json={"format": "json"})
    assert r.status_code == 403 and "another user" in r.json()["detail"]
    assert client.get(f"/v1/stories/{story}/exports", headers=bob.headers).status_code == 403
    r = client.post(
        "/v1/stories/00000000-0000-0000-0000-000000000000/exports",
        headers=alice.headers,
        json={"format": "json"},
    )
    assert r.status_code == 404
    export_id = client.post(
        f"/v1/stories/{story}/exports", headers=alice.headers, json={"format": "json"}
    ).json()["id"]
    workers.start(types=["export_story"])
    assert wait_for(lambda: finished(client, alice, export_id), timeout=60)["status"] == "completed"
    for path in (
        f"/v1/exports/{export_id}",
        f"/v1/exports/{export_id}/file",
        f"/v1/exports/{export_id}/link",
    ):
        assert client.get(path, headers=bob.headers).status_code == 403, path
        assert client.get(path).status_code == 401
    # A collaborator (viewer) of the story may export it and download the owner's export.
    conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status) VALUES (%s, %s, 'viewer', 'accepted')",
        (story, bob.user_id),
    )
    assert client.get(f"/v1/exports/{export_id}/file", headers=bob.headers).status_code == 200
    assert (
        client.post(f"/v1/stories/{story}/exports", headers=bob.headers, json={"format": "epub"}).status_code
        == 202
    )
    # Not an export: a job of another type is not reachable here.
    noop = client.post("/v1/jobs", headers=alice.headers, json={"job_type": "noop", "metadata": {}})
    if noop.status_code == 201:
        assert client.get(f"/v1/exports/{noop.json()['id']}", headers=alice.headers).status_code == 404


def test_unknown_format_or_layout_is_a_422_naming_the_allowed_values(client, alice, alice_story):
    url = f"/v1/stories/{alice_story.story_id}/exports"
    r = client.post(url, headers=alice.headers, json={"format": "docx"})
    assert r.status_code == 422
    text = json.dumps(r.json())
    assert all(f"'{f}'" in text for f in ("pdf", "epub", "html", "json", "video"))
    r = client.post(url, headers=alice.headers, json={"format": "pdf", "layout": "collage"})
    assert r.status_code == 422 and "comic-style" in json.dumps(r.json())
    r = client.post(url, headers=alice.headers, json={"format": "pdf", "customStyling": "a" * 20_001})
    assert r.status_code == 422
    r = client.post(url, headers=alice.headers, json={"format": "pdf", "imageQuality": "ultra"})
    assert r.status_code == 422 and "thumbnail" in json.dumps(r.json())


def test_a_file_before_the_export_is_done_is_a_409(client, alice, alice_story):
    export_id = client.post(
        f"/v1/stories/{alice_story.story_id}/exports", headers=alice.headers, json={"format": "pdf"}
    ).json()["id"]
    r = client.get(f"/v1/exports/{export_id}/file", headers=alice.headers)
    assert r.status_code == 409 and "pending" in r.json()["detail"]


def test_signed_links_work_without_a_key_until_they_expire(
    app, client, alice, bob, alice_story, workers, store
):
    export_id = client.post(
        f"/v1/stories/{alice_story.story_id}/exports", headers=alice.headers, json={"format": "json"}
    ).json()["id"]
    workers.start(types=["export_story"])
    body = wait_for(lambda: finished(client, alice, export_id), timeout=60)
    link = client.get(f"/v1/exports/{export_id}/link?expires_in=600", headers=alice.headers).json()
    assert link["url"].startswith("/media/exports/")
    r = client.get(link["url"])  # no key
    assert r.status_code == 200 and r.headers["etag"] == f'"{body["sha256"]}"'
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert 500 <= int(r.headers["cache-control"].split("=")[1]) <= 600
    assert "filename*=UTF-8''Fox_Heron" in r.headers["content-disposition"]
    tampered = link["url"].replace("sig=", "sig=0")
    assert client.get(tampered).status_code == 404
    renamed = link["url"].replace("name=Fox", "name=Evil")
    assert renamed != link["url"] and client.get(renamed).status_code == 404
    secret = app.state.api.secret(store, "files")
    past = int(time.time()) - 5
    result = store.job(export_id)["result"]
    expired = f"/media/{result['file']}?expires={past}&sig={signature(secret, result['file'], past)}"
    assert client.get(expired).status_code == 404
    assert client.get(f"/media/{result['file']}").status_code == 404  # unsigned and not public
    # An image of the story: private headers with a key, a signed link without.
    image_id = alice_story.image_ids[0]
    r = client.get(f"/v1/images/{image_id}/file", headers=alice.headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert r.headers["etag"].strip('"') in str(alice_story.image_paths[0])
    assert (
        client.get(
            f"/v1/images/{image_id}/file", headers={**alice.headers, "If-None-Match": r.headers["etag"]}
        ).status_code
        == 304
    )
    assert client.get(f"/v1/images/{image_id}/link", headers=bob.headers).status_code == 403
    url = client.get(f"/v1/images/{image_id}/link", headers=alice.headers).json()["url"]
    assert client.get(url).content == r.content


def test_public_base_url_prefixes_links(settings, db_url, limits, store, alice, alice_story):
    from fastapi.testclient import TestClient

    from enchant_worker.api import create_app

    app = create_app(
        settings.model_copy(update={"public_base_url": "https://cdn.example.org/enchant"}),
        database_url=db_url,
        limits=limits,
    )
    with TestClient(app) as client:
        url = client.get(f"/v1/images/{alice_story.image_ids[0]}/link", headers=alice.headers).json()["url"]
    assert url.startswith("https://cdn.example.org/enchant/media/images/")
