"""Story metadata and the caller's preferences: read through the TTL caches (in-process and on the real
Redis at 127.0.0.1:6379), a write through the API shows at once, rights, bad bodies, unknown ids."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from enchant_worker.api import create_app
from enchant_worker.cache import Cache
from enchant_worker.handlers import default_registry

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(params=["memory", "redis"])
def cache(request):
    """A cache of this test's own: in-process, or on Redis under a prefix of its own (deleted after)."""
    if request.param == "memory":
        yield Cache(None)
        return
    if not _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"enchant-test:{uuid.uuid4().hex}:"
    cache = Cache(REDIS_URL, prefix=prefix)
    yield cache
    keys = list(cache.redis.client.scan_iter(f"{prefix}*"))
    if keys:
        cache.redis.client.delete(*keys)


def _client(settings, db_url, limits, cache) -> TestClient:
    return TestClient(
        create_app(
            settings,
            database_url=db_url,
            job_types=default_registry(plugins=False),
            limits=limits,
            cache=cache,
        )
    )


@pytest.fixture
def cached_client(settings, db_url, limits, cache):
    with _client(settings, db_url, limits, cache) as c:
        yield c


@pytest.fixture
def story(store, alice) -> str:
    return str(
        store.conn.execute(
            "INSERT INTO stories (user_id, title, description, style_preference) "
            "VALUES (%s, 'Tale', 'A long tale', 'realistic') RETURNING id",
            [alice.user_id],
        ).fetchone()["id"]
    )


def _collaborate(store, story, user, role, status="accepted"):
    store.conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status) VALUES (%s, %s, %s, %s)",
        [story, user, role, status],
    )


# -- caching ------------------------------------------------------------------------------------------


def test_story_metadata_is_cached_and_a_patch_shows_at_once(cached_client, cache, store, story, alice):
    r = cached_client.get(f"/v2/stories/{story}", headers=alice.headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["title"] == "Tale" and first["style_preference"] == "realistic"
    assert first["id"] == story and first["user_id"] == str(alice.user_id) and first["updated_at"]
    # Changed behind the cache's back: the cached value is served (the cache holds it).
    store.conn.execute("UPDATE stories SET title = 'Behind the back' WHERE id = %s", [story])
    assert cached_client.get(f"/v2/stories/{story}", headers=alice.headers).json()["title"] == "Tale"
    assert cache.story_metadata.get(story)["title"] == "Tale"
    # A write through the API: the next read shows it at once.
    r = cached_client.patch(
        f"/v2/stories/{story}",
        headers=alice.headers,
        json={
            "title": "New title",
            "genre": "fantasy",
            "style_preference": "artistic",
            "comment": "retitled",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "New title" and r.json()["description"] == "A long tale"
    got = cached_client.get(f"/v2/stories/{story}", headers=alice.headers).json()
    assert (got["title"], got["genre"], got["style_preference"]) == ("New title", "fantasy", "artistic")
    assert got["updated_at"] > first["updated_at"]
    # The collaborative editing history records who changed what, from what.
    rows = store.conn.execute("SELECT * FROM edit_history WHERE entity_id = %s", [story]).fetchall()
    assert len(rows) == 1
    assert rows[0]["entity_type"] == "story" and rows[0]["action_type"] == "update"
    assert rows[0]["user_id"] == alice.user_id and rows[0]["comment"] == "retitled"
    assert rows[0]["changes"] == {
        "title": {"old": "Behind the back", "new": "New title"},
        "genre": {"old": None, "new": "fantasy"},
        "style_preference": {"old": "realistic", "new": "artistic"},
    }


def test_patch_clears_fields_and_a_no_op_records_nothing(cached_client, store, story, alice):
    r = cached_client.patch(f"/v2/stories/{story}", headers=alice.headers, json={"description": None})
    assert r.status_code == 200 and r.json()["description"] is None
    assert cached_client.get(f"/v2/stories/{story}", headers=alice.headers).json()["description"] is None
    for body in ({}, {"title": "Tale"}):
        r = cached_client.patch(f"/v2/stories/{story}", headers=alice.headers, json=body)
        assert r.status_code == 200 and r.json()["title"] == "Tale"
    assert store.conn.execute("SELECT count(*) AS n FROM edit_history").fetchone()["n"] == 1


def test_preferences_are_cached_and_a_put_shows_at_once(cached_client, cache, store, alice, bob):
    assert cached_client.get("/v2/users/me/preferences", headers=alice.headers).json() == {}
    store.conn.execute(
        "UPDATE users SET preferences = %s WHERE id = %s", [Jsonb({"theme": "sneaky"}), alice.user_id]
    )
    assert cached_client.get("/v2/users/me/preferences", headers=alice.headers).json() == {}
    assert cache.user_preferences.get(str(alice.user_id)) == {}
    body = {"style_preference": "artistic", "theme": "dark", "nested": {"a": [1, 2.5, None, True]}}
    r = cached_client.put("/v2/users/me/preferences", headers=alice.headers, json=body)
    assert r.status_code == 200 and r.json() == body
    assert cached_client.get("/v2/users/me/preferences", headers=alice.headers).json() == body
    stored = store.conn.execute("SELECT preferences FROM users WHERE id = %s", [alice.user_id]).fetchone()
    assert stored["preferences"] == body
    # Each user has their own; every version has them (they steer basic generation).
    assert cached_client.get("/v1/users/me/preferences", headers=bob.headers).json() == {}
    assert cached_client.get("/v1/users/me/preferences", headers=alice.headers).json() == body


def test_cached_values_expire_after_their_ttl(settings, db_url, limits, store, story, alice):
    cache = Cache(None, ttls={"story_metadata": 0.3, "user_preferences": 0.3})
    with _client(settings, db_url, limits, cache) as client:
        assert client.get(f"/v2/stories/{story}", headers=alice.headers).json()["title"] == "Tale"
        assert client.get("/v2/users/me/preferences", headers=alice.headers).json() == {}
        store.conn.execute("UPDATE stories SET title = 'Later' WHERE id = %s", [story])
        store.conn.execute('UPDATE users SET preferences = \'{"theme": "x"}\' WHERE id = %s', [alice.user_id])
        assert client.get(f"/v2/stories/{story}", headers=alice.headers).json()["title"] == "Tale"
        assert client.get("/v2/users/me/preferences", headers=alice.headers).json() == {}
        time.sleep(0.4)
        assert client.get(f"/v2/stories/{story}", headers=alice.headers).json()["title"] == "Later"
        assert client.get("/v2/users/me/preferences", headers=alice.headers).json() == {"theme": "x"}


def test_the_app_uses_the_process_shared_cache_by_default(client, settings, store, story, alice):
    from enchant_worker.cache import shared_cache

    assert client.get(f"/v2/stories/{story}", headers=alice.headers).status_code == 200
    assert client.app.state.api.get_cache() is shared_cache(settings)
    assert shared_cache(settings).story_metadata.get(story)["title"] == "Tale"
    client.patch(f"/v2/stories/{story}", headers=alice.headers, json={"title": "Shared"})
    assert shared_cache(settings).story_metadata.get(story) is None  # invalidated for the worker too


# -- rights -------------------------------------------------------------------------------------------


def test_rights(client, store, story, alice, bob, admin, make_user):
    viewer, contributor, editor, pending = (make_user() for _ in range(4))
    _collaborate(store, story, viewer.user_id, "viewer")
    _collaborate(store, story, contributor.user_id, "contributor")
    _collaborate(store, story, editor.user_id, "editor")
    _collaborate(store, story, pending.user_id, "editor", status="pending")
    url = f"/v2/stories/{story}"
    # A viewer reads but may not change; a stranger and a pending invitee get nothing.
    assert client.get(url, headers=viewer.headers).status_code == 200
    assert client.patch(url, json={"title": "V"}, headers=viewer.headers).status_code == 403
    for caller in (bob, pending):
        assert client.get(url, headers=caller.headers).status_code == 403
        assert client.patch(url, json={"title": "B"}, headers=caller.headers).status_code == 403
    # Write rights (contributor, editor, owner, admin) may patch; an admin's edit has no user in the history.
    for caller, title in ((contributor, "C"), (editor, "E"), (alice, "A"), (admin, "Z")):
        r = client.patch(url, json={"title": title}, headers=caller.headers)
        assert r.status_code == 200 and r.json()["title"] == title, r.text
        assert client.get(url, headers=viewer.headers).json()["title"] == title
    users = [
        r["user_id"]
        for r in store.conn.execute(
            "SELECT user_id FROM edit_history WHERE entity_id = %s ORDER BY created_at, id", [story]
        ).fetchall()
    ]
    assert users == [contributor.user_id, editor.user_id, alice.user_id, None]
    # No key, or an unknown one: 401 on every route.
    for headers in ({}, {"Authorization": "Bearer ew_nope"}):
        assert client.get(url, headers=headers).status_code == 401
        assert client.patch(url, json={"title": "X"}, headers=headers).status_code == 401
        assert client.get("/v2/users/me/preferences", headers=headers).status_code == 401
        assert client.put("/v2/users/me/preferences", json={}, headers=headers).status_code == 401
    # An admin key acting for no user has no preferences of its own.
    r = client.get("/v2/users/me/preferences", headers=admin.headers)
    assert r.status_code == 404 and "no user" in r.json()["detail"]
    assert client.put("/v2/users/me/preferences", json={}, headers=admin.headers).status_code == 404


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"title": None}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "x" * 501}, ["body", "title"]),
        ({"genre": "g" * 101}, ["body", "genre"]),
        ({"style_preference": 3}, ["body", "style_preference"]),
        ({"description": "nul\u0000"}, ["body", "description"]),
        ({"owner": "me"}, ["body", "owner"]),
        (["title"], ["body"]),
    ],
)
def test_bad_story_bodies(client, story, alice, body, loc):
    r = client.patch(f"/v2/stories/{story}", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def _deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ([1, 2], ["body"]),
        ("dark", ["body"]),
        ({"style_preference": 5}, ["body", "style_preference"]),
        ({"style_preference": "s" * 101}, ["body", "style_preference"]),
        ({"theme": "nul\u0000"}, ["body", "theme"]),
        ({"k\u0000": 1}, ["body", "k\u0000"]),
        ({"deep": _deep(40)}, ["body", "deep"]),
        ({"blob": "x" * 20_000}, ["body"]),
        ({f"k{i}": i for i in range(101)}, ["body"]),
    ],
)
def test_bad_preference_bodies(client, store, alice, body, loc):
    r = client.put("/v2/users/me/preferences", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    stored = store.conn.execute("SELECT preferences FROM users WHERE id = %s", [alice.user_id]).fetchone()
    assert stored["preferences"] == {}


def test_unknown_ids(client, alice, admin, story):
    for caller in (alice, admin):
        missing = uuid.uuid4()
        r = client.get(f"/v2/stories/{missing}", headers=caller.headers)
        assert r.status_code == 404 and str(missing) in r.json()["detail"]
        assert (
            client.patch(f"/v2/stories/{missing}", json={"title": "T"}, headers=caller.headers).status_code
            == 404
        )
    r = client.get("/v2/stories/not-a-uuid", headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "story_id"]
    # Stories are part of collaboration, which v1 does not have: the 404 names v2.
    r = client.get(f"/v1/stories/{story}", headers=alice.headers)
    assert r.status_code == 404 and "/v2" in r.json()["detail"]
