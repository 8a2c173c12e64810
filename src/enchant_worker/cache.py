"""TTL caches after the specification's caching strategy: user preferences (300 s), story metadata
(3600 s), community content (86400 s).

Backed by Redis when ENCHANT_REDIS_URL is set (shared by every process, so an invalidation made by one is
seen by all), in-process otherwise. When Redis cannot be reached the cache warns once and serves from the
in-process store, trying Redis again every ENCHANT_CACHE_RETRY_REDIS_S; keys invalidated meanwhile are
deleted from Redis when it is back. A cache never fails a request.

Invalidate on every write, after its commit. A read that
raced with a write does not put the old value back: each key has a version, bumped by every invalidation,
and a value loaded under an older version is not stored. Values are JSON (UUIDs and times come back as
strings). Every process shares one key per story or user (in Redis), so every caller caches the same
shape: load with `load_story_metadata` / `load_user_preferences`.

    cache = shared_cache(settings)                    # one per process: `serve`'s API and worker share it
    story = cache.story_metadata(story_id, lambda: load_story_metadata(conn, story_id))
    prefs = cache.user_preferences(user_id, lambda: load_user_preferences(conn, user_id))
    cache.invalidate_story(story_id)                  # after a write to the story's row has committed
    cache.invalidate_user_preferences(user_id)        # after a write to users.preferences has committed
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from enchant_worker.config import Settings

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5  # an unreachable Redis costs a request at most this long (then the fallback)
MEMORY_MAX_ENTRIES = 10_000
VERSION_EXTRA_TTL_S = 60  # versions outlive the values they guard


class MemoryStore:
    """An in-process TTL store with LRU eviction; thread-safe."""

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES):
        self.max_entries = max_entries
        self._values: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._floor = 0  # the version of keys whose record was pruned
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._values.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._values[key]
                return None
            self._values.move_to_end(key)
            return item[1]

    def version(self, key: str) -> Any:
        with self._lock:
            return self._versions.get(key, self._floor)

    def set_if_version(self, key: str, value: str, ttl_s: float, version: Any) -> bool:
        with self._lock:
            if self._versions.get(key, self._floor) != version:
                return False
            self._values[key] = (time.monotonic() + ttl_s, value)
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)
            return True

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._versions[key] = next(self._counter)
            if len(self._versions) > self.max_entries:
                self._floor = next(self._counter)
                self._versions.clear()

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._floor = next(self._counter)
            self._versions.clear()


class RedisStore:
    """The same operations on Redis; errors propagate (Cache decides what to do with them)."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S, decode_responses=True
        )
        self.prefix = prefix

    def _v(self, key: str) -> str:
        return f"{self.prefix}version:{key}"

    def get(self, key: str) -> str | None:
        return cast("str | None", self.client.get(self.prefix + key))  # decode_responses: text, not bytes

    def version(self, key: str) -> Any:
        return self.client.get(self._v(key))

    def set_if_version(self, key: str, value: str, ttl_s: float, version: Any) -> bool:
        import redis

        with self.client.pipeline() as pipe:
            try:
                pipe.watch(self._v(key))  # an invalidation from now until EXEC aborts the SET
                if pipe.get(self._v(key)) != version:
                    return False
                pipe.multi()
                pipe.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def invalidate(self, key: str, ttl_s: float = 86400) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.prefix + key)
            pipe.incr(self._v(key))
            pipe.expire(self._v(key), int(ttl_s) + VERSION_EXTRA_TTL_S)
            pipe.execute()


class Cache:
    """The caches of one process. `backend` says which store serves now: 'redis' or 'memory'."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        prefix: str = "enchant:",
        retry_redis_s: float = 30.0,
        ttls: dict[str, float] | None = None,
    ):
        ttls = {
            "user_preferences": 300.0,
            "story_metadata": 3600.0,
            "community_content": 86400.0,
            **(ttls or {}),
        }
        self.memory = MemoryStore()
        self.redis: RedisStore | None = RedisStore(redis_url, prefix) if redis_url else None
        self.retry_redis_s = retry_redis_s
        self._redis_down_until = 0.0
        self._missed_invalidations: dict[str, float] = {}
        self._lock = threading.Lock()
        self.user_preferences = CacheNamespace(self, "user_preferences", ttls["user_preferences"])
        self.story_metadata = CacheNamespace(self, "story_metadata", ttls["story_metadata"])
        self.community_content = CacheNamespace(self, "community_content", ttls["community_content"])

    @classmethod
    def from_settings(cls, settings: Settings) -> Cache:
        return cls(
            settings.redis_url,
            retry_redis_s=settings.cache_retry_redis_s,
            ttls={
                "user_preferences": settings.cache_user_preferences_ttl_s,
                "story_metadata": settings.cache_story_metadata_ttl_s,
                "community_content": settings.cache_community_content_ttl_s,
            },
        )

    def invalidate_story(self, story_id: Any) -> None:
        """Call after a write to the story's row (title, description, genre, style_preference) commits."""
        self.story_metadata.invalidate(str(story_id))

    def invalidate_user_preferences(self, user_id: Any) -> None:
        """Call after a write to the user's preferences commits."""
        self.user_preferences.invalidate(str(user_id))

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None and time.monotonic() >= self._redis_down_until else "memory"

    # -- every operation goes through here: Redis when it answers, memory otherwise -----------------

    def _call(self, op: str, key: str, *args: Any, ttl_s: float = 86400) -> Any:
        if self.redis is not None and self.backend == "redis":
            try:
                self._replay_missed(self.redis)
                if op == "invalidate":
                    return self.redis.invalidate(key, ttl_s)
                return getattr(self.redis, op)(key, *args)
            except Exception as exc:  # redis.RedisError and socket errors alike: never fail a request
                self._redis_failed(exc)
        if op == "invalidate" and self.redis is not None:
            with self._lock:
                self._missed_invalidations[key] = ttl_s
        return getattr(self.memory, op)(key, *args)

    def _redis_failed(self, exc: Exception) -> None:
        with self._lock:
            first = time.monotonic() >= self._redis_down_until
            self._redis_down_until = time.monotonic() + self.retry_redis_s
        if first:
            log.warning(
                "Redis cache unreachable (%s); using the in-process cache, retrying Redis in %.0fs",
                str(exc).strip() or type(exc).__name__,
                self.retry_redis_s,
            )
            self.memory.clear()  # start clean: memory may hold values from an earlier outage

    def _replay_missed(self, redis_store: RedisStore) -> None:
        """Redis is back: apply the invalidations it missed, and drop the in-process values."""
        if not self._missed_invalidations:
            return
        with self._lock:
            missed, self._missed_invalidations = self._missed_invalidations, {}
        try:
            for key, ttl_s in missed.items():
                redis_store.invalidate(key, ttl_s)
        except Exception:
            with self._lock:
                self._missed_invalidations.update(missed)
            raise
        log.info("Redis cache reachable again; replayed %d invalidation(s)", len(missed))
        self.memory.clear()


class CacheNamespace:
    """One kind of cached value with its TTL, e.g. `cache.user_preferences`."""

    def __init__(self, cache: Cache, name: str, ttl_s: float):
        self.cache = cache
        self.name = name
        self.ttl_s = ttl_s

    def _key(self, key: Any) -> str:
        return f"{self.name}:{key}"

    def get(self, key: Any, default: Any = None) -> Any:
        text = self.cache._call("get", self._key(key))
        return default if text is None else json.loads(text)

    def get_or_load(self, key: Any, load: Callable[[], Any]) -> Any:
        """The cached value, or `load()` stored for the TTL (None is returned, not stored).
        Also spelled `namespace(key, load)`, e.g. `cache.story_metadata(story_id, load)`."""
        k = self._key(key)
        text = self.cache._call("get", k)
        if text is not None:
            return json.loads(text)
        version = self.cache._call("version", k)
        value = load()
        if value is None:
            return None
        text = json.dumps(value, default=str)
        self.cache._call("set_if_version", k, text, self.ttl_s, version)
        return json.loads(text)

    __call__ = get_or_load

    def set(self, key: Any, value: Any) -> None:
        k = self._key(key)
        self.cache._call(
            "set_if_version", k, json.dumps(value, default=str), self.ttl_s, self.cache._call("version", k)
        )

    def invalidate(self, key: Any) -> None:
        self.cache._call("invalidate", self._key(key), ttl_s=self.ttl_s)

    def version(self, key: Any) -> Any:
        """The key's version, changed by every invalidation of it: put it in the keys of values that one
        invalidation must drop together (e.g. every cached page of a listing)."""
        return self.cache._call("version", self._key(key))


_shared: dict[tuple, Cache] = {}
_shared_lock = threading.Lock()


def shared_cache(settings: Settings) -> Cache:
    """This process's Cache for these settings, made on first use. One per process, so that the API, the
    worker and the scheduler of `serve` see each other's invalidations even without Redis, and a job's
    reads find what the previous job loaded."""
    key = (
        settings.redis_url,
        settings.cache_retry_redis_s,
        settings.cache_user_preferences_ttl_s,
        settings.cache_story_metadata_ttl_s,
        settings.cache_community_content_ttl_s,
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Cache.from_settings(settings)
        return _shared[key]


def load_story_metadata(conn, story_id: Any) -> dict[str, Any] | None:
    """The cached shape of a story (get_story_metadata): id, user_id, title, description, genre,
    style_preference, created_at, updated_at; None when there is no such story."""
    from enchant_worker.sql import q

    return conn.execute(q("get_story_metadata"), {"id": story_id}).fetchone()


def load_user_preferences(conn, user_id: Any) -> dict[str, Any] | None:
    """The cached shape of a user's preferences: users.preferences; None when there is no such user."""
    from enchant_worker.sql import q

    row = conn.execute(q("get_user_preferences"), {"id": user_id}).fetchone()
    return None if row is None else row["preferences"]
