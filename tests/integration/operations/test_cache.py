"""The caches: in-process and on the real Redis (127.0.0.1:6379), invalidation, Redis unreachable."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from enchant_worker.cache import (
    Cache,
    RedisStore,
    load_story_metadata,
    load_user_preferences,
    shared_cache,
)
from enchant_worker.config import Settings
from enchant_worker.content_address import address_hash, content_address, immutable_headers

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


def _redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture
def prefix():
    value = f"enchant-test:{uuid.uuid4().hex}:"
    yield value
    if _redis_available():
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{value}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def cache(request, prefix):
    if request.param == "redis":
        if not _redis_available():
            pytest.skip("no Redis at 127.0.0.1:6379")
        return Cache(REDIS_URL, prefix=prefix)
    return Cache(None)


class Loader:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_get_or_load_caches_until_invalidated(cache):
    load = Loader({"theme": "dark"})
    assert cache.user_preferences.get_or_load("u1", load) == {"theme": "dark"}
    assert cache.user_preferences.get_or_load("u1", load) == {"theme": "dark"}
    assert load.calls == 1
    load.value = {"theme": "light"}
    cache.user_preferences.invalidate("u1")
    assert cache.user_preferences.get_or_load("u1", load) == {"theme": "light"} and load.calls == 2
    # Namespaces are apart; None is not stored.
    assert cache.story_metadata.get("u1") is None
    missing = Loader(None)
    assert (
        cache.story_metadata.get_or_load("s", missing) is None
        and cache.story_metadata.get_or_load("s", missing) is None
    )
    assert missing.calls == 2


def test_values_expire_after_their_ttl(prefix):
    for url in (None, REDIS_URL if _redis_available() else None):
        c = Cache(url, prefix=prefix, ttls={"user_preferences": 0.2})
        assert c.user_preferences.ttl_s == 0.2 and c.story_metadata.ttl_s == 3600
        load = Loader({"n": 1})
        c.user_preferences.get_or_load("u", load)
        c.user_preferences.get_or_load("u", load)
        time.sleep(0.3)
        c.user_preferences.get_or_load("u", load)
        assert load.calls == 2


def test_default_ttls_follow_the_specification():
    c = Cache.from_settings(Settings(redis_url=None))
    assert (c.user_preferences.ttl_s, c.story_metadata.ttl_s, c.community_content.ttl_s) == (300, 3600, 86400)
    assert c.backend == "memory"


def test_a_load_racing_with_a_write_does_not_store_the_old_value(cache):
    def stale_load():
        cache.user_preferences.invalidate("u")  # a write commits while we were reading
        return {"v": "old"}

    assert cache.user_preferences.get_or_load("u", stale_load) == {"v": "old"}
    fresh = Loader({"v": "new"})
    assert cache.user_preferences.get_or_load("u", fresh) == {"v": "new"} and fresh.calls == 1


def test_redis_is_shared_between_processes_including_invalidation(prefix):
    if not _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    api, builder = Cache(REDIS_URL, prefix=prefix), Cache(REDIS_URL, prefix=prefix)
    assert api.backend == "redis"
    load = Loader({"title": "One"})
    api.story_metadata.get_or_load("s1", load)
    assert builder.story_metadata.get_or_load("s1", load) == {"title": "One"} and load.calls == 1
    api.story_metadata.invalidate("s1")
    load.value = {"title": "Two"}
    assert builder.story_metadata.get_or_load("s1", load) == {"title": "Two"} and load.calls == 2


def test_unreachable_redis_falls_back_with_a_warning_and_never_fails(caplog, prefix):
    caplog.set_level(logging.WARNING, logger="enchant_worker.cache")
    c = Cache(DEAD_REDIS_URL, prefix=prefix, retry_redis_s=60)
    load = Loader({"theme": "dark"})
    assert c.user_preferences.get_or_load("u", load) == {"theme": "dark"}
    assert c.backend == "memory"
    assert c.user_preferences.get_or_load("u", load) == {"theme": "dark"} and load.calls == 1
    c.user_preferences.invalidate("u")
    assert c.user_preferences.get_or_load("u", load) and load.calls == 2
    warnings = [r for r in caplog.records if "Redis cache unreachable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_invalidations_missed_during_an_outage_reach_redis_when_it_is_back(prefix):
    if not _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    other, flaky = Cache(REDIS_URL, prefix=prefix), Cache(REDIS_URL, prefix=prefix, retry_redis_s=0.2)
    load = Loader({"v": 1})
    other.user_preferences.get_or_load("u", load)
    working = flaky.redis
    flaky.redis = RedisStore(DEAD_REDIS_URL, prefix)  # Redis goes away for this process
    flaky.user_preferences.invalidate("u")  # a write while it is away
    assert flaky.backend == "memory"
    flaky.redis = working
    time.sleep(0.3)
    load.value = {"v": 2}
    assert flaky.user_preferences.get_or_load("u", load) == {"v": 2}  # replays the invalidation first
    assert flaky.backend == "redis"
    assert other.user_preferences.get_or_load("u", load) == {"v": 2}


def test_the_short_api_for_the_api_and_the_prompt_builder(cache, conn):
    user = conn.execute(
        "INSERT INTO users (email, preferences) VALUES ('q@x', '{\"style_preference\": \"ink\"}') "
        "RETURNING id"
    ).fetchone()["id"]
    story = conn.execute(
        "INSERT INTO stories (user_id, title, style_preference) VALUES (%s, 'Tale', 'anime') RETURNING id",
        (user,),
    ).fetchone()["id"]
    assert (
        cache.story_metadata(story, lambda: load_story_metadata(conn, story))["style_preference"] == "anime"
    )
    assert cache.user_preferences(user, lambda: load_user_preferences(conn, user)) == {
        "style_preference": "ink"
    }
    conn.execute("UPDATE stories SET style_preference = 'oil' WHERE id = %s", (story,))
    conn.execute("UPDATE users SET preferences = '{}' WHERE id = %s", (user,))
    assert (
        cache.story_metadata(story, lambda: load_story_metadata(conn, story))["style_preference"] == "anime"
    )
    cache.invalidate_story(story)
    cache.invalidate_user_preferences(user)
    assert cache.story_metadata(story, lambda: load_story_metadata(conn, story))["style_preference"] == "oil"
    assert cache.user_preferences(user, lambda: load_user_preferences(conn, user)) == {}


def test_one_shared_cache_per_process_and_configuration():
    settings = Settings(redis_url=None)
    assert shared_cache(settings) is shared_cache(settings.model_copy())
    assert shared_cache(settings) is not shared_cache(
        settings.model_copy(update={"cache_story_metadata_ttl_s": 5})
    )


def test_content_addressed_paths_and_immutable_headers():
    path = content_address(b"png bytes")
    assert path.startswith("images/") and path.endswith(".png") and path.count("/") == 3
    assert path == content_address(b"png bytes") != content_address(b"other bytes")
    digest = address_hash(path)
    assert path == f"images/{digest[:2]}/{digest[2:4]}/{digest}.png"
    assert immutable_headers(path) == {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": f'"{digest}"',
    }
    assert "immutable" not in immutable_headers("exports/story.pdf")["Cache-Control"]
    assert content_address(b"x", ".WEBP", folder="previews").startswith("previews/")
    with pytest.raises(ValueError):
        content_address(b"x", "png/../../etc")
    with pytest.raises(TypeError):
        content_address("text")
