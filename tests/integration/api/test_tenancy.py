"""Multi-tenant safety: every id and path inside a job's metadata is checked against the caller's rights,
with two users and an admin, through the API (and the worker's re-check of rows inserted by SQL)."""

from __future__ import annotations

import uuid

import pytest
from psycopg.types.json import Jsonb

from enchant_worker.domain.jobs import JobStatus
from enchant_worker.handlers import default_registry
from enchant_worker.queue import JobQueue
from enchant_worker.worker.runner import Worker


def _world(conn, settings, user_id, tag: str) -> dict[str, str]:
    """A user's story with every kind of row a job may name, a private preset and ready LoRA, an image,
    an upload and a LoRA being trained."""
    one = lambda sql, *args: str(conn.execute(sql, args).fetchone()["id"])  # noqa: E731
    story = one("INSERT INTO stories (user_id, title) VALUES (%s, %s) RETURNING id", user_id, f"story {tag}")
    chapter = one(
        "INSERT INTO chapters (story_id, chapter_number, content) VALUES (%s, 1, 'text') RETURNING id", story
    )
    location = one("INSERT INTO locations (story_id, name) VALUES (%s, 'castle') RETURNING id", story)
    scene = one(
        "INSERT INTO scenes (chapter_id, content, location_id) VALUES (%s, 'A secret scene', %s) "
        "RETURNING id",
        chapter,
        location,
    )
    character = one("INSERT INTO characters (story_id, name) VALUES (%s, 'Ada') RETURNING id", story)
    branch = one(
        "INSERT INTO story_branches (parent_story_id, branch_name, branch_point_chapter) "
        "VALUES (%s, 'alt', 1) RETURNING id",
        story,
    )
    preset = one(
        "INSERT INTO generation_presets (user_id, name, provider, model_name, parameters) "
        "VALUES (%s, %s, 'local', 'tiny-sd', %s) RETURNING id",
        user_id,
        f"preset-{tag}",
        Jsonb({}),
    )
    (settings.storage / "loras").mkdir(parents=True, exist_ok=True)
    lora = one(
        "INSERT INTO lora_models (user_id, name, model_file_url, status) VALUES (%s, %s, %s, 'ready') "
        "RETURNING id",
        user_id,
        f"lora-{tag}",
        f"loras/{tag}.safetensors",
    )
    training = one(
        "INSERT INTO lora_models (user_id, name, model_file_url, status) VALUES (%s, %s, 'x', 'training') "
        "RETURNING id",
        user_id,
        f"training-{tag}",
    )
    image = one(
        "INSERT INTO images (scene_id, user_id, file_path) VALUES (%s, %s, 'images/x.png') RETURNING id",
        scene,
        user_id,
    )
    upload_id = uuid.uuid4()
    folder = f"uploads/{user_id}/{upload_id}"
    (settings.storage / folder).mkdir(parents=True)
    conn.execute(
        "INSERT INTO uploads (id, user_id, folder, file_count, total_bytes) VALUES (%s, %s, %s, 5, 5)",
        (upload_id, user_id, folder),
    )
    return {
        "story": story,
        "chapter": chapter,
        "scene": scene,
        "character": character,
        "location": location,
        "branch": branch,
        "preset": preset,
        "lora": lora,
        "training": training,
        "image": image,
        "upload": str(upload_id),
        "upload_path": folder,
        "user": str(user_id),
        "tag": tag,
    }


@pytest.fixture
def worlds(store, settings, alice, bob):
    return _world(store.conn, settings, alice.user_id, "a"), _world(store.conn, settings, bob.user_id, "b")


def generate(**metadata):
    return {"job_type": "generate_image", "metadata": {"steps": 2, **metadata}}


def train(w, **metadata):
    base = {"name": "style", "training_images": [w["upload"]], "epochs": 1, "resolution": 64}
    return {"job_type": "train_lora", "metadata": {**base, **metadata}}


# Every reference field of every user job type: the request naming world w's row (m: the caller's own).
REFERENCES = {
    "scene_id": lambda w, m: generate(scene_id=w["scene"]),
    "branch_id": lambda w, m: generate(scene_id=m["scene"], branch_id=w["branch"]),
    "preset": lambda w, m: generate(prompt="a castle", preset=w["preset"]),
    "preset by name": lambda w, m: generate(prompt="a castle", preset=f"preset-{w['tag']}"),
    "loras[0].lora_model_id": lambda w, m: generate(prompt="a castle", loras=[{"lora_model_id": w["lora"]}]),
    "entity_id": lambda w, m: {
        **generate(prompt="a castle"),
        "entity_type": "chapter",
        "entity_id": w["chapter"],
    },
    "entity_id (character)": lambda w, m: {
        **generate(prompt="a castle"),
        "entity_type": "character",
        "entity_id": w["character"],
    },
    "entity_id (location)": lambda w, m: {
        **generate(prompt="a castle"),
        "entity_type": "location",
        "entity_id": w["location"],
    },
    "entity_id (image)": lambda w, m: {
        **generate(prompt="a castle"),
        "entity_type": "image",
        "entity_id": w["image"],
    },
    "training_images[0]": lambda w, m: train(w),
    "training_images[0] (path)": lambda w, m: train(w, training_images=[w["upload_path"]]),
    "lora_model_id": lambda w, m: train(w, lora_model_id=w["training"]),
    "user_id": lambda w, m: train(w, user_id=w["user"]),
}


def _field(case: str) -> str:
    return case.split(" ")[0]


def _jobs(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"]


@pytest.mark.parametrize("case", list(REFERENCES))
def test_another_users_rows_are_refused_naming_the_field(client, store, worlds, alice, bob, admin, case):
    mine, theirs = worlds
    before = _jobs(store.conn)
    r = client.post("/v2/jobs", json=REFERENCES[case](theirs, mine), headers=alice.headers)
    if case == "preset by name":  # a name only ever finds what the user may see
        assert r.status_code == 422 and "preset" in r.json()["detail"][0]["loc"], r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["field"] == _field(case), r.json()
        assert r.json()["detail"].startswith(_field(case) + ":")
    assert _jobs(store.conn) == before  # nothing enqueued
    # The same request about her own rows is accepted, and an admin may name anyone's.
    r = client.post("/v2/jobs", json=REFERENCES[case](mine, mine), headers=alice.headers)
    assert r.status_code == 201, r.text
    r = client.post("/v2/jobs", json=REFERENCES[case](theirs, theirs), headers=admin.headers)
    assert r.status_code == 201, r.text


MISSING = {
    "scene_id": generate(scene_id=str(uuid.uuid4())),
    "branch_id": None,  # filled in: needs a real scene
    "preset": generate(prompt="x", preset=str(uuid.uuid4())),
    "model": generate(prompt="x", model="sd99"),
    "loras[0].name": generate(prompt="x", loras=["nosuch:0.5"]),
    "loras[0].lora_model_id": generate(prompt="x", loras=[{"lora_model_id": str(uuid.uuid4())}]),
    "entity_id": {**generate(prompt="x"), "entity_type": "scene", "entity_id": str(uuid.uuid4())},
}


@pytest.mark.parametrize("field", list(MISSING))
def test_missing_rows_are_422_naming_the_field(client, worlds, alice, field):
    body = MISSING[field] or generate(scene_id=worlds[0]["scene"], branch_id=str(uuid.uuid4()))
    r = client.post("/v2/jobs", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["msg"].startswith(field + ":"), detail
    assert field.split(".")[0].split("[")[0] in detail["loc"]


def test_rows_of_the_wrong_kind_are_422(client, worlds, alice):
    mine = worlds[0]
    for body, field in (
        (generate(scene_id=mine["chapter"]), "scene_id"),
        (generate(scene_id=mine["scene"], branch_id=mine["scene"]), "branch_id"),
        (generate(prompt="x", loras=[{"lora_model_id": mine["preset"]}]), "loras[0].lora_model_id"),
        (train(mine, lora_model_id=mine["story"]), "lora_model_id"),
        (train(mine, training_images=[mine["lora"]]), "training_images[0]"),
    ):
        r = client.post("/v2/jobs", json=body, headers=alice.headers)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["detail"][0]["msg"].startswith(f"{field}: no "), r.json()


def test_public_rows_are_usable_and_ownerless_private_ones_are_admin_only(
    client, store, worlds, alice, admin
):
    theirs = worlds[1]
    conn = store.conn
    conn.execute("UPDATE lora_models SET is_public = TRUE WHERE id = %s", (theirs["lora"],))
    conn.execute("UPDATE generation_presets SET is_public = TRUE WHERE id = %s", (theirs["preset"],))
    body = generate(prompt="a castle", preset=theirs["preset"], loras=["lora-b:0.6"])
    assert client.post("/v2/jobs", json=body, headers=alice.headers).status_code == 201
    ownerless = conn.execute(
        "INSERT INTO generation_presets (name, provider, model_name, parameters) "
        "VALUES ('house', 'local', 'tiny-sd', '{}') RETURNING id"
    ).fetchone()["id"]
    r = client.post("/v2/jobs", json=generate(prompt="x", preset=str(ownerless)), headers=alice.headers)
    assert r.status_code == 403 and r.json()["field"] == "preset"
    r = client.post("/v2/jobs", json=generate(prompt="x", preset="house"), headers=alice.headers)
    assert r.status_code == 422
    assert (
        client.post("/v2/jobs", json=generate(prompt="x", preset="house"), headers=admin.headers).status_code
        == 201
    )


def test_collaborators_need_write_rights_to_illustrate_a_scene(client, store, worlds, alice, bob):
    theirs = worlds[1]
    store.conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status) "
        "VALUES (%s, %s, 'viewer', 'accepted')",
        (theirs["story"], alice.user_id),
    )
    r = client.post("/v2/jobs", json=generate(scene_id=theirs["scene"]), headers=alice.headers)
    assert r.status_code == 403 and r.json()["field"] == "scene_id"
    store.conn.execute("UPDATE story_collaborators SET role = 'editor' WHERE user_id = %s", (alice.user_id,))
    r = client.post("/v2/jobs", json=generate(scene_id=theirs["scene"]), headers=alice.headers)
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["entity_type"], job["entity_id"]) == ("scene", theirs["scene"])  # the job is about the scene


def test_server_paths_are_refused_without_echoing_them(client, worlds, alice, admin, settings):
    for path in ("/etc/ssl", "/root/.ssh/id_rsa", "../../etc", "uploads/../../etc"):
        r = client.post("/v2/jobs", json=train(worlds[0], training_images=[path]), headers=alice.headers)
        assert r.status_code == 403, (path, r.text)
        assert "/etc" not in r.text and "id_rsa" not in r.text
    # An admin may name folders only under ENCHANT_TRAINING_DIRS (none configured here).
    r = client.post("/v2/jobs", json=train(worlds[0], training_images=["/etc/ssl"]), headers=admin.headers)
    assert r.status_code == 403 and "ENCHANT_TRAINING_DIRS" in r.text
    r = client.post("/v2/jobs", json=train(worlds[0], base_model="/etc"), headers=alice.headers)
    assert r.status_code == 403 and r.json()["field"] == "base_model"


@pytest.mark.parametrize("job_type", ["noop", "data_migration"])
def test_user_keys_may_not_enqueue_operational_types(client, alice, admin, job_type):
    metadata = {"name": "x"} if job_type == "data_migration" else {"seconds": 3600}
    r = client.post("/v2/jobs", json={"job_type": job_type, "metadata": metadata}, headers=alice.headers)
    assert r.status_code == 403 and r.json()["field"] == "job_type"
    assert "generate_image" in r.json()["detail"]  # what users may enqueue


def test_priority_and_attempts_are_capped_by_the_tier(client, alice, admin):
    r = client.post("/v2/jobs", json={**generate(prompt="x"), "priority": 0}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "priority"], r.text
    assert "free tier" in r.json()["detail"][0]["msg"]
    r = client.post("/v2/jobs", json={**generate(prompt="x"), "max_attempts": 100}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_attempts"]
    r = client.post(
        "/v2/jobs", json={**generate(prompt="x"), "priority": 0, "max_attempts": 100}, headers=admin.headers
    )
    assert r.status_code == 201 and r.json()["priority"] == 0


def train_lora_seed_body(**extra):
    return {
        "job_type": "train_lora",
        "entity_type": "lora_model",
        "metadata": {
            "training_images": [],
            "parameters": {"learning_rate": 1e-4, "batch_size": 1, "epochs": 1, "resolution": 64},
        },
        **extra,
    }


def test_quotas_answer_429_with_retry_after(client, store, alice, bob):
    store.conn.execute(
        "UPDATE users SET quota_overrides = %s WHERE id = %s",
        (Jsonb({"images_per_day": 3, "max_active_jobs": 5}), alice.user_id),
    )
    assert (
        client.post("/v2/jobs", json=generate(prompt="x", count=2), headers=alice.headers).status_code == 201
    )
    r = client.post("/v2/jobs", json=generate(prompt="x", count=2), headers=alice.headers)
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["retry-after"]) <= 86400 and "images per day" in r.json()["detail"]
    assert client.post("/v2/jobs", json=generate(prompt="x"), headers=alice.headers).status_code == 201
    # Another user's quota is their own.
    assert client.post("/v2/jobs", json=generate(prompt="x", count=2), headers=bob.headers).status_code == 201
    store.conn.execute(
        "UPDATE users SET quota_overrides = %s WHERE id = %s", (Jsonb({"max_active_jobs": 2}), bob.user_id)
    )
    assert client.post("/v2/jobs", json=generate(prompt="x"), headers=bob.headers).status_code == 201
    r = client.post("/v2/jobs", json=generate(prompt="x"), headers=bob.headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "30"


def test_idempotency_keys_are_per_user_and_refuse_another_job(client, alice, bob):
    body = {**generate(prompt="a castle"), "idempotency_key": "k1"}
    first = client.post("/v2/jobs", json=body, headers=alice.headers)
    again = client.post("/v2/jobs", json=body, headers=alice.headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    other = client.post("/v2/jobs", json={**body, "metadata": {"prompt": "a boat"}}, headers=alice.headers)
    assert other.status_code == 409 and first.json()["id"] in other.json()["detail"]
    theirs = client.post("/v2/jobs", json={**body, "metadata": {"prompt": "a boat"}}, headers=bob.headers)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert first.json()["id"] not in theirs.text
    long_key = client.post("/v2/jobs", json={**body, "idempotency_key": "k" * 9000}, headers=alice.headers)
    assert long_key.status_code == 422


def test_seed_shape_of_initiate_lora_training(client, store, worlds, alice, settings):
    mine = worlds[0]
    # The seed's job: entity lora_model (the row made first), training_images, parameters{...}.
    body = train_lora_seed_body(entity_id=mine["training"])
    body["metadata"]["training_images"] = [mine["upload"]]
    r = client.post("/v2/jobs", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["metadata"]["name"] == "training-a" and job["metadata"]["base_model"] == "tiny-sd"
    assert job["priority"] == 8 and job["entity_id"] == mine["training"]
    # Without a LoRA row, the request must name the LoRA; the refusal says so.
    r = client.post("/v2/jobs", json=train_lora_seed_body(), headers=alice.headers)
    assert r.status_code == 422 and any(d["msg"].startswith("name: required") for d in r.json()["detail"]), (
        r.text
    )


def test_the_worker_rechecks_rows_inserted_by_sql(conn, db, settings, worlds, bob):
    """The web app inserts jobs by SQL: bob's job naming alice's scene fails with a clear message when a
    worker picks it up; nothing of alice's is read or written."""
    mine = worlds[0]
    queue = JobQueue(conn)
    job_id = conn.execute(
        "INSERT INTO processing_jobs (job_type, user_id, metadata) VALUES ('generate_image', %s, %s) "
        "RETURNING id",
        (bob.user_id, Jsonb({"scene_id": mine["scene"]})),
    ).fetchone()["id"]
    sneaky = conn.execute(
        "INSERT INTO processing_jobs (job_type, user_id, entity_type, entity_id, metadata) "
        "VALUES ('train_lora', %s, 'lora_model', %s, %s) RETURNING id",
        (
            bob.user_id,
            mine["training"],
            Jsonb({"name": "x", "base_model": "tiny-sd", "training_images": [mine["upload"]]}),
        ),
    ).fetchone()["id"]
    noop = conn.execute(
        "INSERT INTO processing_jobs (job_type, user_id) VALUES ('noop', %s) RETURNING id", (bob.user_id,)
    ).fetchone()["id"]
    Worker(
        db,
        settings,
        default_registry(plugins=False),
        job_types=["generate_image", "train_lora", "noop"],
        burst=True,
    ).run()
    for jid, field in ((job_id, "scene_id"), (sneaky, "training_images[0]"), (noop, "job_type")):
        job = queue.get(jid)
        assert job.status == JobStatus.FAILED, (field, job)
        assert job.attempts == 1 and field + ":" in job.error_message, job.error_message
    assert conn.execute("SELECT count(*) AS n FROM images WHERE job_id = %s", (job_id,)).fetchone()["n"] == 0
    # alice's LoRA in training is not touched by the failure of bob's job
    row = conn.execute(
        "SELECT status, error_message FROM lora_models WHERE id = %s", (mine["training"],)
    ).fetchone()
    assert row["status"] == "training" and row["error_message"] is None


def test_admins_see_and_change_tiers_and_quotas(client, alice, bob, admin):
    assert client.get("/v2/users", headers=alice.headers).status_code == 403
    assert (
        client.patch(
            f"/v2/users/{alice.user_id}/tier", json={"subscription_tier": "pro"}, headers=alice.headers
        ).status_code
        == 403
    )
    mine = client.get("/v2/users/me/tier", headers=alice.headers).json()
    assert mine["subscription_tier"] == "free" and mine["effective"]["priority_floor"] == 5
    r = client.patch(
        f"/v2/users/{alice.user_id}/tier",
        headers=admin.headers,
        json={"subscription_tier": "pro", "quota_overrides": {"images_per_day": 1}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["effective"]["priority_floor"] == 3 and r.json()["effective"]["images_per_day"] == 1
    # The new tier applies at once: priority 3 is now allowed, the second image is over the exception.
    assert (
        client.post(
            "/v2/jobs", json={**generate(prompt="x"), "priority": 3}, headers=alice.headers
        ).status_code
        == 201
    )
    assert client.post("/v2/jobs", json=generate(prompt="x"), headers=alice.headers).status_code == 429
    listed = {u["id"]: u for u in client.get("/v2/users", headers=admin.headers).json()["items"]}
    assert listed[str(alice.user_id)]["usage_today"] == {"images": 1}
    first = client.get("/v2/users?limit=1", headers=admin.headers).json()
    assert first["next_cursor"], first
    second = client.get(
        "/v2/users", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin.headers
    ).json()
    assert first["items"][0]["id"] != second["items"][0]["id"] and {
        first["items"][0]["id"],
        second["items"][0]["id"],
    } <= set(listed)
    for bad in (
        {"quota_overrides": {"images_per_hour": 5}},
        {"quota_overrides": {"images_per_day": -1}},
        {"subscription_tier": "platinum"},
    ):
        r = client.patch(f"/v2/users/{alice.user_id}/tier", json=bad, headers=admin.headers)
        assert r.status_code == 422, (bad, r.text)
    assert (
        client.patch(
            f"/v2/users/{uuid.uuid4()}/tier", json={"subscription_tier": "pro"}, headers=admin.headers
        ).status_code
        == 404
    )


def test_fair_share_overrides_of_zero_are_refused_naming_the_setting(client, alice, admin):
    for key in ("fair_share_weight", "max_running_jobs"):
        r = client.patch(
            f"/v2/users/{alice.user_id}/tier", json={"quota_overrides": {key: 0}}, headers=admin.headers
        )
        assert r.status_code == 422 and f"{key}: must be at least 1, not 0" in r.text, r.text
    r = client.patch(
        f"/v2/users/{alice.user_id}/tier",
        headers=admin.headers,
        json={"quota_overrides": {"fair_share_weight": 3, "max_running_jobs": 2}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["effective"]["fair_share_weight"] == 3 and r.json()["effective"]["max_running_jobs"] == 2
