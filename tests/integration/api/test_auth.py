"""Keys and roles: 401 without a key, the role × route matrix, collaborator rights on stories."""

from __future__ import annotations

import uuid

import pytest
from psycopg.types.json import Jsonb

from enchant_worker.api.auth import hash_key

# (method, path template, body): every route but health. {job}, {preset}, {lora}, {image}, {story}
# are resources owned by alice (see `owned` for the collaboration ones).
ROUTES = [
    ("GET", "/versions", None),
    ("GET", "/metrics", None),
    ("GET", "/dashboard/panels", None),
    ("POST", "/v1/jobs", {"job_type": "generate_image", "metadata": {"prompt": "a castle"}}),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/{job}", None),
    ("POST", "/v1/jobs/{job}/cancel", None),
    ("POST", "/v1/jobs/{job}/retry", None),
    ("PATCH", "/v1/jobs/{job}", {"priority": 3}),
    ("GET", "/v1/queue/stats", None),
    ("GET", "/v1/workers", None),
    ("GET", "/v1/models", None),
    ("GET", "/v1/providers", None),
    ("POST", "/v1/presets", {"name": "p", "model_name": "tiny-sd"}),
    ("GET", "/v1/presets", None),
    ("GET", "/v1/presets/{preset}", None),
    ("PATCH", "/v1/presets/{preset}", {"name": "q"}),
    ("DELETE", "/v1/presets/{preset}", None),
    ("GET", "/v1/images", None),
    ("GET", "/v1/images/{image}", None),
    ("GET", "/v1/images/{image}/file", None),
    ("GET", "/v2/loras", None),
    ("GET", "/v2/loras/{lora}", None),
    ("GET", "/v2/loras/{lora}/download", None),
    ("POST", "/v2/loras/{lora}/publish", None),
    ("POST", "/v2/loras/{lora}/unpublish", None),
    ("GET", "/v2/stories/{story}/collaborators", None),
    ("GET", "/v2/stories/{story}", None),
    ("PATCH", "/v2/stories/{story}", {"genre": "fantasy"}),
    ("POST", "/v2/stories/{story}/collaborators", {"email": "dave@example.org", "role": "viewer"}),
    ("PATCH", "/v2/stories/{story}/collaborators/{collaborator}", {"role": "editor"}),
    ("DELETE", "/v2/stories/{story}/collaborators/{collaborator}", None),
    ("POST", "/v2/stories/{their_story}/collaborators/{invitation}/accept", None),
    ("POST", "/v2/stories/{their_story}/collaborators/{invitation}/decline", None),
    ("GET", "/v2/users/me/preferences", None),
    ("PUT", "/v2/users/me/preferences", {"theme": "dark"}),
]
ADMIN_ONLY = {"/metrics", "/dashboard/panels", "/v1/workers"}
# Answered by the invitee only ({invitation} invites alice to carol's story): not even an admin key.
INVITEE_ONLY = {
    "/v2/stories/{their_story}/collaborators/{invitation}/accept",
    "/v2/stories/{their_story}/collaborators/{invitation}/decline",
}
# What a stranger (bob, no rights on alice's things) gets: 403 on alice's resources, 2xx on lists and
# on his own creations; admin-only routes 403.
BOB_OK = {
    "/versions",
    "/v1/jobs",
    "/v1/queue/stats",
    "/v1/models",
    "/v1/providers",
    "/v1/presets",
    "/v1/images",
    "/v2/loras",
    "/v2/users/me/preferences",
}


@pytest.fixture
def owned(store, alice, png, settings, make_user) -> dict[str, str]:
    """A story, job, preset, ready LoRA and image, all alice's; carol's pending invitation to alice's
    story ({collaborator}); carol's story ({their_story}) with alice's pending invitation ({invitation})."""
    conn = store.conn
    carol = make_user("carol@example.org")
    make_user("dave@example.org")
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'Tale') RETURNING id", [alice.user_id]
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 1) RETURNING id", [story]
    ).fetchone()["id"]
    scene = conn.execute("INSERT INTO scenes (chapter_id) VALUES (%s) RETURNING id", [chapter]).fetchone()[
        "id"
    ]
    job = conn.execute(
        "INSERT INTO processing_jobs (job_type, user_id, status, completed_at) "
        "VALUES ('noop', %s, 'failed', NOW()) RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    preset = conn.execute(
        "INSERT INTO generation_presets (user_id, name, provider, model_name, parameters) "
        "VALUES (%s, 'mine', 'local', 'tiny-sd', %s) RETURNING id",
        [alice.user_id, Jsonb({"steps": 4})],
    ).fetchone()["id"]
    (settings.storage / "loras").mkdir(parents=True, exist_ok=True)
    (settings.storage / "loras" / "style.safetensors").write_bytes(b"weights")
    lora = conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url, status) "
        "VALUES (%s, 'style', 'loras/style.safetensors', 'ready') RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    (settings.storage / "images").mkdir(parents=True, exist_ok=True)
    image_path = settings.storage / "images" / "a.png"
    image_path.write_bytes(png())
    image = conn.execute(
        "INSERT INTO images (scene_id, user_id, file_path, prompt) VALUES (%s, %s, %s, 'a castle') "
        "RETURNING id",
        [scene, alice.user_id, str(image_path)],
    ).fetchone()["id"]
    collaborator = conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, invited_by) "
        "VALUES (%s, %s, 'contributor', %s) RETURNING id",
        [story, carol.user_id, alice.user_id],
    ).fetchone()["id"]
    their_story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'Theirs') RETURNING id", [carol.user_id]
    ).fetchone()["id"]
    invitation = conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, invited_by) "
        "VALUES (%s, %s, 'viewer', %s) RETURNING id",
        [their_story, alice.user_id, carol.user_id],
    ).fetchone()["id"]
    return {
        "collaborator": str(collaborator),
        "their_story": str(their_story),
        "invitation": str(invitation),
        "story": str(story),
        "job": str(job),
        "preset": str(preset),
        "lora": str(lora),
        "image": str(image),
        "scene": str(scene),
    }


def _call(client, method, template, body, headers, owned):
    return client.request(method, template.format(**owned), json=body, headers=headers)


def _allowed(r) -> bool:
    """Past the rights check (the state of the resource may still refuse, e.g. 409)."""
    return r.status_code not in (401, 403) and r.status_code < 500


@pytest.mark.parametrize(("method", "template", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_matrix(client, owned, admin, alice, bob, method, template, body):
    # No key, and an unknown key: 401 with a WWW-Authenticate challenge.
    for headers in ({}, {"Authorization": "Bearer ew_not-a-key"}):
        r = _call(client, method, template, body, headers, owned)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    # A stranger: lists and own creations only.
    r = _call(client, method, template, body, bob.headers, owned)
    stranger_ok = template in BOB_OK or (method == "POST" and template in ("/v1/jobs", "/v1/presets"))
    assert _allowed(r) if stranger_ok else r.status_code == 403, r.text
    # The owner: everything but admin-only routes.
    r = _call(client, method, template, body, alice.headers, owned)
    assert r.status_code == 403 if template in ADMIN_ONLY else _allowed(r), r.text
    # Admin: everything but answering another user's invitation.
    r = _call(client, method, template, body, admin.headers, owned)
    assert r.status_code == 403 if template in INVITEE_ONLY else _allowed(r), r.text


def test_strangers_see_none_of_alices_things_in_lists(client, owned, bob, alice):
    assert client.get("/v1/jobs", headers=bob.headers).json()["items"] == []
    assert client.get("/v1/presets", headers=bob.headers).json() == {"items": [], "next_cursor": None}
    assert client.get("/v2/loras", headers=bob.headers).json() == {"items": [], "next_cursor": None}
    assert client.get("/v1/images", headers=bob.headers).json() == {"items": [], "next_cursor": None}
    assert len(client.get("/v1/jobs", headers=alice.headers).json()["items"]) == 1
    r = client.get("/v1/jobs", params={"user_id": str(alice.user_id)}, headers=bob.headers)
    assert r.status_code == 403


def test_revoked_key_is_refused(client, store, alice):
    assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
    store.conn.execute("UPDATE api_keys SET revoked_at = NOW() WHERE key_hash = %s", [hash_key(alice.key)])
    assert client.get("/v1/jobs", headers=alice.headers).status_code == 401


def test_x_api_key_header_works_too(client, alice):
    assert client.get("/v1/jobs", headers={"X-API-Key": alice.key}).status_code == 200


def test_keys_are_stored_only_as_hashes(store, alice):
    rows = store.conn.execute("SELECT * FROM api_keys").fetchall()
    assert rows and all(alice.key not in str(r) for r in rows)


def _collaborate(store, story, user, role, permissions=None, status="accepted"):
    store.conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status, permissions) VALUES (%s, %s, %s, %s, "
        'COALESCE(%s, \'{"read": true, "write": false, "admin": false}\'::jsonb))',
        [story, user, role, status, Jsonb(permissions) if permissions else None],
    )


def test_collaborator_rights(client, store, owned, alice, make_user):
    viewer, contributor, pending, granted = (make_user() for _ in range(4))
    _collaborate(store, owned["story"], viewer.user_id, "viewer")
    _collaborate(store, owned["story"], contributor.user_id, "contributor")
    _collaborate(store, owned["story"], pending.user_id, "editor", status="pending")
    _collaborate(store, owned["story"], granted.user_id, "viewer", permissions={"read": True, "write": True})
    body = {"job_type": "generate_image", "metadata": {"scene_id": owned["scene"]}}
    story_job = client.post("/v1/jobs", json=body, headers=alice.headers).json()["id"]
    # Viewers read the story's jobs and images but may not add or change jobs.
    assert client.get(f"/v1/jobs/{story_job}", headers=viewer.headers).status_code == 200
    assert client.get(f"/v1/images/{owned['image']}", headers=viewer.headers).status_code == 200
    assert client.post("/v1/jobs", json=body, headers=viewer.headers).status_code == 403
    assert (
        client.patch(f"/v1/jobs/{story_job}", json={"priority": 1}, headers=viewer.headers).status_code == 403
    )
    assert (
        client.get(f"/v2/stories/{owned['story']}/collaborators", headers=viewer.headers).status_code == 200
    )
    # Contributors write; the permissions JSON can grant write to a viewer.
    for caller in (contributor, granted):
        assert client.post("/v1/jobs", json=body, headers=caller.headers).status_code == 201
        assert (
            client.patch(f"/v1/jobs/{story_job}", json={"priority": 2}, headers=caller.headers).status_code
            == 200
        )
    # An invitation not accepted yet gives nothing.
    assert client.get(f"/v1/jobs/{story_job}", headers=pending.headers).status_code == 403
    assert (
        client.get(f"/v2/stories/{owned['story']}/collaborators", headers=pending.headers).status_code == 403
    )
    listed = client.get("/v1/jobs", params={"entity_type": "scene"}, headers=viewer.headers).json()["items"]
    assert story_job in [j["id"] for j in listed]
    assert client.get(f"/v2/stories/{uuid.uuid4()}/collaborators", headers=alice.headers).status_code == 404
