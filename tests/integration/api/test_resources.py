"""Presets, images, models and providers end to end."""

from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb


def test_preset_crud(client, alice, bob):
    body = {
        "name": "Moody",
        "model_name": "tiny-sd",
        "parameters": {"steps": 12},
        "style_modifiers": ["noir"],
    }
    r = client.post("/v1/presets", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    preset = r.json()
    assert (
        preset["provider"] == "local"
        and preset["user_id"] == str(alice.user_id)
        and preset["usage_count"] == 0
    )
    pid = preset["id"]
    r = client.patch(
        f"/v1/presets/{pid}", json={"description": "dark", "parameters": {"steps": 20}}, headers=alice.headers
    )
    assert (
        r.status_code == 200 and r.json()["description"] == "dark" and r.json()["parameters"] == {"steps": 20}
    )
    assert r.json()["name"] == "Moody"
    r = client.patch(f"/v1/presets/{pid}", json={"description": None}, headers=alice.headers)
    assert r.json()["description"] is None
    assert client.get(f"/v1/presets/{pid}", headers=bob.headers).status_code == 403
    client.patch(f"/v1/presets/{pid}", json={"is_public": True}, headers=alice.headers)
    assert client.get(f"/v1/presets/{pid}", headers=bob.headers).status_code == 200
    assert client.patch(f"/v1/presets/{pid}", json={"name": "mine"}, headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/presets/{pid}", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/presets/{pid}", headers=alice.headers).status_code == 204
    assert client.get(f"/v1/presets/{pid}", headers=alice.headers).status_code == 404
    assert client.delete(f"/v1/presets/{pid}", headers=alice.headers).status_code == 404


def test_preset_bad_input(client, alice):
    for body, field in [
        ({"model_name": "m"}, "name"),
        ({"name": "x"}, "model_name"),
        ({"name": "x", "model_name": "m", "parameters": "steps=3"}, "parameters"),
        ({"name": "x" * 201, "model_name": "m"}, "name"),
        ({"name": "x", "model_name": "m", "colour": "red"}, "colour"),
    ]:
        r = client.post("/v1/presets", json=body, headers=alice.headers)
        assert r.status_code == 422 and field in r.json()["detail"][0]["loc"], (body, r.text)
    assert client.patch(f"/v1/presets/{uuid.uuid4()}", json={}, headers=alice.headers).status_code == 404


def _image(store, user, path, prompt="a lighthouse at dusk"):
    return store.conn.execute(
        "INSERT INTO images (user_id, file_path, prompt, seed, parameters, width, height) "
        "VALUES (%s, %s, %s, 7, %s, 32, 32) RETURNING id",
        [user, str(path), prompt, Jsonb({"steps": 4})],
    ).fetchone()["id"]


def test_image_metadata_and_file(client, store, alice, bob, png, settings):
    (settings.storage / "images").mkdir(parents=True)
    data = png()
    (settings.storage / "images" / "x.png").write_bytes(data)
    relative = _image(store, alice.user_id, "images/x.png")
    r = client.get(f"/v1/images/{relative}", headers=alice.headers)
    assert (
        r.status_code == 200
        and r.json()["seed"] == 7
        and r.json()["file_url"] == f"/v1/images/{relative}/file"
    )
    r = client.get(f"/v1/images/{relative}/file", headers=alice.headers)
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "image/png"
    assert client.get(f"/v1/images/{relative}/file", headers=bob.headers).status_code == 403
    assert [i["id"] for i in client.get("/v1/images", headers=alice.headers).json()["items"]] == [
        str(relative)
    ]
    missing = _image(store, alice.user_id, "images/gone.png")
    assert client.get(f"/v1/images/{missing}/file", headers=alice.headers).status_code == 404
    escape = _image(store, alice.user_id, "../../etc/passwd")
    assert client.get(f"/v1/images/{escape}/file", headers=alice.headers).status_code == 404
    assert client.get(f"/v1/images/{uuid.uuid4()}", headers=alice.headers).status_code == 404


def test_models_and_providers(client, alice, conn):
    from enchant_worker.queue import JobQueue

    JobQueue(conn).register_worker(
        "gpu-1",
        host="h",
        pid=1,
        job_types=["generate_image"],
        device={"kind": "cuda", "loaded_models": ["tiny-sd"]},
        concurrency=1,
    )
    [model] = [m for m in client.get("/v1/models", headers=alice.headers).json() if m["name"] == "tiny-sd"]
    assert (
        model["default"]
        and model["available"]
        and model["family"] == "sd15"
        and model["loaded_on"] == ["gpu-1"]
    )
    providers = client.get("/v1/providers", headers=alice.headers).json()
    assert [p for p in providers if p["name"] == "local"][0]["served_by"] == ["gpu-1"]
