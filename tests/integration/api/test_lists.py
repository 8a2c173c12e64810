"""Every list route pages alike ({items, next_cursor}, the same signed cursor) and takes its filters;
actions return the job; LoRAs show their job, base model, preview and URLs, never paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.types.json import Jsonb

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease


def _walk(client, url, headers, **params):
    """Every item of a list route, page by page; asserts the shape of each page."""
    items, cursor, pages = [], None, 0
    while True:
        body = client.get(
            url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        ).json()
        assert set(body) == {"items", "next_cursor"}, body
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def _story_scene(conn, user_id):
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'S') RETURNING id", [user_id]
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number, title) VALUES (%s, 1, 'C') RETURNING id", [story]
    ).fetchone()["id"]
    scene = conn.execute(
        "INSERT INTO scenes (chapter_id, content) VALUES (%s, 'x') RETURNING id", [chapter]
    ).fetchone()["id"]
    return story, scene


def _image(conn, user_id, *, scene=None, job=None, lora=None, created=None, prompt="p"):
    params = {"loras": [{"name": "ink", "lora_model_id": str(lora)}]} if lora else {}
    return conn.execute(
        "INSERT INTO images (user_id, scene_id, job_id, file_path, prompt, parameters, created_at) "
        "VALUES (%s, %s, %s, 'images/x.png', %s, %s, %s) RETURNING id",
        [user_id, scene, job, prompt, Jsonb(params), created or datetime.now(UTC)],
    ).fetchone()["id"]


def test_images_page_past_200_and_filter(client, conn, alice):
    story, scene = _story_scene(conn, alice.user_id)
    job = uuid.uuid4()
    lora = conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url, status) VALUES (%s, 'ink', "
        "'loras/ink.safetensors', 'ready') RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    old = datetime.now(UTC) - timedelta(days=3)
    conn.execute(
        "INSERT INTO images (user_id, file_path, created_at) SELECT %s, 'images/x.png', "
        "NOW() - make_interval(secs => g) FROM generate_series(1, 205) g",
        [alice.user_id],
    )
    in_scene = _image(conn, alice.user_id, scene=scene, job=job, lora=lora)
    dated = _image(conn, alice.user_id, created=old)
    items, pages = _walk(client, "/v1/images", alice.headers, limit=100)
    assert len(items) == 207 and len({i["id"] for i in items}) == 207 and pages == 3  # image 201 is reachable
    assert items == sorted(items, key=lambda i: (i["created_at"], i["id"]), reverse=True)
    for params in (
        {"job_id": str(job)},
        {"scene_id": str(scene)},
        {"story_id": str(story)},
        {"lora_id": str(lora)},
    ):
        assert [i["id"] for i in _walk(client, "/v1/images", alice.headers, **params)[0]] == [
            str(in_scene)
        ], params
    window = {
        "created_from": (old - timedelta(hours=1)).isoformat(),
        "created_to": (old + timedelta(hours=1)).isoformat(),
    }
    assert [i["id"] for i in _walk(client, "/v1/images", alice.headers, **window)[0]] == [str(dated)]
    assert all(i["file_url"].startswith("/v1/images/") for i in items)  # URLs, never paths


def test_loras_and_presets_page_and_filter(client, conn, alice, bob, admin):
    for i in range(5):
        conn.execute(
            "INSERT INTO lora_models (user_id, name, model_file_url, status, is_public) "
            "VALUES (%s, %s, 'loras/a.safetensors', %s, %s)",
            [alice.user_id, f"a{i}", "ready" if i % 2 else "failed", i < 2],
        )
        client.post(
            "/v1/presets",
            json={"name": f"p{i}", "model_name": "m", "is_public": i < 2},
            headers=alice.headers,
        )
    client.post("/v1/presets", json={"name": "bob's", "model_name": "m"}, headers=bob.headers)
    loras, pages = _walk(client, "/v2/loras", alice.headers, limit=2)
    assert len(loras) == 5 and pages == 3
    assert {lo["name"] for lo in _walk(client, "/v2/loras", alice.headers, status="ready")[0]} == {"a1", "a3"}
    assert {lo["name"] for lo in _walk(client, "/v2/loras", bob.headers)[0]} == {"a0", "a1"}  # public only
    assert {lo["name"] for lo in _walk(client, "/v2/loras", admin.headers, is_public="false")[0]} == {
        "a2",
        "a3",
        "a4",
    }
    assert len(_walk(client, "/v2/loras", admin.headers, owner=str(alice.user_id))[0]) == 5
    assert _walk(client, "/v2/loras", admin.headers, owner=str(bob.user_id))[0] == []
    assert all(lo["model_file_url"] == f"/v2/loras/{lo['id']}/download" for lo in loras)  # never a path
    presets, pages = _walk(client, "/v1/presets", admin.headers, limit=4)
    assert len(presets) == 6 and pages == 2
    assert {p["name"] for p in _walk(client, "/v1/presets", bob.headers)[0]} == {"p0", "p1", "bob's"}
    assert {p["name"] for p in _walk(client, "/v1/presets", admin.headers, owner=str(bob.user_id))[0]} == {
        "bob's"
    }
    assert len(_walk(client, "/v1/presets", admin.headers, is_public="true")[0]) == 2


@pytest.mark.parametrize("url", ["/v1/images", "/v2/loras", "/v1/presets", "/v1/jobs"])
def test_forged_or_foreign_cursors_are_400_and_bad_filters_422(client, conn, admin, url):
    conn.execute("INSERT INTO images (file_path) SELECT 'images/x.png' FROM generate_series(1, 3)")
    for i in range(3):
        conn.execute("INSERT INTO lora_models (name, model_file_url) VALUES (%s, 'x')", [f"l{i}"])
        client.post("/v1/presets", json={"name": f"p{i}", "model_name": "m"}, headers=admin.headers)
        client.post("/v1/jobs", json={"job_type": "noop"}, headers=admin.headers)
    cursor = client.get(url, params={"limit": 1}, headers=admin.headers).json()["next_cursor"]
    assert cursor
    payload, mac = cursor.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    for bad in (forged, "garbage", cursor + "x", "a.b.c"):
        r = client.get(url, params={"limit": 1, "cursor": bad}, headers=admin.headers)
        assert r.status_code == 400 and "cursor" in r.json()["detail"], (bad, r.text)
    other_filter = {
        "/v1/images": {"job_id": str(uuid.uuid4())},
        "/v2/loras": {"status": "ready"},
        "/v1/presets": {"is_public": "true"},
        "/v1/jobs": {"status": "failed"},
    }[url]
    r = client.get(url, params={"limit": 1, "cursor": cursor, **other_filter}, headers=admin.headers)
    assert r.status_code == 400 and "other filters" in r.json()["detail"]
    wrong_type = {
        "/v1/images": {"created_from": "yesterday"},
        "/v2/loras": {"owner": "alice"},
        "/v1/presets": {"is_public": "perhaps"},
        "/v1/jobs": {"story_id": "12"},
    }[url]
    assert client.get(url, params=wrong_type, headers=admin.headers).status_code == 422


def test_jobs_filter_by_story_and_time(client, conn, alice):
    story, scene = _story_scene(conn, alice.user_id)
    r = client.post(
        "/v1/jobs",
        json={"job_type": "generate_image", "metadata": {"scene_id": str(scene)}},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["entity_type"], job["entity_id"], job["story_id"]) == ("scene", str(scene), str(story))
    client.post(
        "/v1/jobs",
        json={"job_type": "generate_image", "metadata": {"prompt": "elsewhere"}},
        headers=alice.headers,
    )
    assert [j["id"] for j in _walk(client, "/v1/jobs", alice.headers, story_id=str(story))[0]] == [job["id"]]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _walk(client, "/v1/jobs", alice.headers, created_from=future)[0] == []
    assert len(_walk(client, "/v1/jobs", alice.headers, created_to=future)[0]) == 2


def test_actions_return_the_job_and_a_wrong_state_is_409_with_it(client, conn, admin):
    job_id = client.post("/v1/jobs", json={"job_type": "noop"}, headers=admin.headers).json()["id"]
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    assert r.status_code == 200 and r.json()["id"] == job_id and r.json()["status"] == "cancelled"
    assert "metadata" in r.json() and "progress_percent" in r.json()  # the whole job
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    assert r.status_code == 409 and r.json()["status"] == "cancelled" and "cancelled" in r.json()["detail"]
    r = client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["attempts"] == 0
    r = client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers)
    assert r.status_code == 409 and r.json()["status"] == "pending"
    queue = JobQueue(conn)
    [leased] = queue.lease("w1", ["noop"])
    queue.complete(Lease(leased.id, leased.lease_token), {"ok": True})
    r = client.patch(f"/v1/jobs/{job_id}", json={"priority": 1}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["status"] == "completed"
    actions = conn.execute(
        "SELECT action, key_name, from_status, to_status FROM job_actions WHERE job_id = %s ORDER BY id",
        [job_id],
    ).fetchall()
    assert [(a["action"], a["key_name"], a["from_status"], a["to_status"]) for a in actions] == [
        ("cancel", "admin", "pending", "cancelled"),
        ("retry", "admin", "cancelled", "pending"),
    ]


def test_bulk_actions_are_admin_only_and_recorded(client, conn, admin, alice):
    queue = JobQueue(conn)
    ids = queue.enqueue_many([NewJob("noop") for _ in range(4)] + [NewJob("generate_image", {"prompt": "x"})])
    r = client.post("/v2/jobs/bulk", json={"action": "cancel", "job_type": "noop"}, headers=alice.headers)
    assert r.status_code == 403
    r = client.post("/v2/jobs/bulk", json={"action": "cancel", "job_type": "noop"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 4 and sorted(r.json()["changed"]) == sorted(map(str, ids[:4]))
    assert queue.get(ids[4]).status == "pending"
    r = client.post("/v2/jobs/bulk", json={"action": "cancel", "job_type": "noop"}, headers=admin.headers)
    assert r.json()["changed"] == [] and {s["status"] for s in r.json()["skipped"]} == {"cancelled"}
    r = client.post("/v2/jobs/bulk", json={"action": "retry", "status": "cancelled"}, headers=admin.headers)
    assert len(r.json()["changed"]) == 4
    assert (
        conn.execute("SELECT count(*) AS n FROM job_actions WHERE bulk AND key_name = 'admin'").fetchone()[
            "n"
        ]
        == 8
    )
    assert client.post("/v2/jobs/bulk", json={"action": "delete"}, headers=admin.headers).status_code == 422


def test_lora_shows_its_job_error_base_model_and_preview(client, conn, alice):
    lora = conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url) VALUES (%s, 'ink', '') RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    queue = JobQueue(conn)
    job = queue.enqueue(
        NewJob(
            "train_lora",
            {"base_model": "tiny-sd", "lora_model_id": str(lora)},
            user_id=alice.user_id,
            entity_type="lora_model",
            entity_id=lora,
        )
    )
    body = client.get(f"/v2/loras/{lora}", headers=alice.headers).json()
    assert (
        body["status"] == "queued" and body["training_job_id"] == str(job) and body["base_model"] == "tiny-sd"
    )
    url = body["model_file_url"]
    [leased] = queue.lease("w1", ["train_lora"])
    assert client.get(f"/v2/loras/{lora}", headers=alice.headers).json()["status"] == "training"
    preview = _image(conn, alice.user_id)
    queue.complete(
        Lease(leased.id, leased.lease_token), {"preview_image_id": str(preview), "lora_file": "loras/x"}
    )
    conn.execute(
        "UPDATE lora_models SET status = 'ready', model_file_url = 'loras/x/ink.safetensors' WHERE id = %s",
        [lora],
    )
    body = client.get(f"/v2/loras/{lora}", headers=alice.headers).json()
    assert body["preview_url"] == f"/v2/images/{preview}/file" and body["model_file_url"] == url  # stable
    assert "loras/x" not in str(body)
    conn.execute(
        "UPDATE lora_models SET status = 'failed', error_message = 'out of memory' WHERE id = %s", [lora]
    )
    assert client.get(f"/v2/loras/{lora}", headers=alice.headers).json()["error_message"] == "out of memory"
