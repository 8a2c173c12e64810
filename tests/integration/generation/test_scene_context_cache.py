"""The prompt builder reads the story's metadata and the user's preferences through the shared TTL
caches: a second job reuses what the first loaded, and an edit through the API is seen at once."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.cache import Cache, shared_cache
from enchant_worker.handlers.scene_context import load_scene, user_preferences


def _scene(conn) -> dict[str, uuid.UUID]:
    user = conn.execute(
        "INSERT INTO users (email, subscription_tier, preferences) "
        "VALUES ('w@example.org', 'pro', '{\"style_preference\": \"realistic\"}') RETURNING id"
    ).fetchone()["id"]
    story = conn.execute(
        "INSERT INTO stories (user_id, title, style_preference) VALUES (%s, 'S', 'artistic') RETURNING id",
        [user],
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 3) RETURNING id", [story]
    ).fetchone()["id"]
    scene = conn.execute(
        "INSERT INTO scenes (chapter_id, summary, emotional_tone) VALUES (%s, 'A duel', 'tense') "
        "RETURNING id",
        [chapter],
    ).fetchone()["id"]
    return {"user": user, "story": story, "scene": scene}


def test_scene_metadata_comes_from_the_cache(conn):
    ids = _scene(conn)
    cache = Cache(None)
    record = load_scene(conn, ids["scene"], None, cache)
    assert (record.story_id, record.chapter_number, record.emotional_tone) == (str(ids["story"]), 3, "tense")
    assert (record.style_preference, record.owner_id, record.owner_tier) == ("artistic", ids["user"], "pro")
    conn.execute("UPDATE stories SET style_preference = 'anime' WHERE id = %s", [ids["story"]])
    assert load_scene(conn, ids["scene"], None, cache).style_preference == "artistic"  # the next job: cached
    assert load_scene(conn, ids["scene"], None).style_preference == "anime"  # no cache: the row
    cache.invalidate_story(ids["story"])
    assert load_scene(conn, ids["scene"], None, cache).style_preference == "anime"
    # Preferences likewise.
    assert user_preferences(conn, ids["user"], cache) == {"style_preference": "realistic"}
    conn.execute("UPDATE users SET preferences = '{}' WHERE id = %s", [ids["user"]])
    assert user_preferences(conn, ids["user"], cache) == {"style_preference": "realistic"}
    cache.invalidate_user_preferences(ids["user"])
    assert user_preferences(conn, ids["user"], cache) == {}
    assert user_preferences(conn, uuid.uuid4(), cache) == {}


def test_an_api_edit_is_seen_by_the_next_job_at_once(conn, settings, db_url):
    """`serve` runs the API and the worker in one process: they share `shared_cache(settings)`."""
    ids = _scene(conn)
    cache = shared_cache(settings)
    assert load_scene(conn, ids["scene"], None, cache).style_preference == "artistic"
    key, _ = create_key(Store(conn), name="w", role="user", user_id=ids["user"])
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings, database_url=db_url)) as client:
        r = client.patch(f"/v2/stories/{ids['story']}", json={"style_preference": "anime"}, headers=headers)
        assert r.status_code == 200, r.text
        assert load_scene(conn, ids["scene"], None, cache).style_preference == "anime"
        assert user_preferences(conn, ids["user"], cache) == {"style_preference": "realistic"}
        r = client.put("/v2/users/me/preferences", json={"style_preference": "comic"}, headers=headers)
        assert r.status_code == 200, r.text
        assert user_preferences(conn, ids["user"], cache) == {"style_preference": "comic"}
