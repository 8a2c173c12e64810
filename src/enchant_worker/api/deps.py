"""Typed dependencies of the routes: the connection, the store, the queue, the cache, the caller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from enchant_worker.api.auth import Principal, hash_key
from enchant_worker.api.errors import Forbidden, ServiceUnavailable, Unauthorized
from enchant_worker.api.job_waits import JobWaits
from enchant_worker.api.store import Store
from enchant_worker.api.versions import Versions
from enchant_worker.api.views import ViewBuffer
from enchant_worker.cache import Cache, shared_cache
from enchant_worker.config import Settings
from enchant_worker.db.connection import Connection
from enchant_worker.jobspecs import job_types
from enchant_worker.queue import JobQueue

POOL_MAX_CONNECTIONS = 10
POOL_WAIT_S = 10.0
KEY_COOKIE = "enchant_key"  # set by /dashboard; accepted for GET requests only


class JobTypes(Protocol):
    """What the API needs of the worker's handler registry: the job types and their validators."""

    @property
    def job_types(self) -> list[str]: ...

    def get(self, job_type: str) -> Any: ...


_SETTING = {name: f.default for name, f in Settings.model_fields.items()}  # the limits' one definition


@dataclass(frozen=True)
class Limits:
    upload_file_bytes: int = _SETTING["upload_max_file_bytes"]
    upload_total_bytes: int = _SETTING["upload_max_request_bytes"]
    min_training_images: int = _SETTING["min_training_images"]
    max_training_images: int = _SETTING["max_training_images"]
    json_body_bytes: int = _SETTING["request_max_json_bytes"]

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.upload_max_file_bytes,
            settings.upload_max_request_bytes,
            settings.min_training_images,
            settings.max_training_images,
            settings.request_max_json_bytes,
        )


@dataclass
class ApiState:
    settings: Settings
    database_url: str
    job_types: JobTypes
    versions: Versions
    limits: Limits
    metrics: Any = None  # the Prometheus registry (api.metrics)
    cache: Cache | None = None  # None: this process's shared_cache(settings), made on first use
    _pool: ConnectionPool[Connection] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _secrets: dict[str, bytes] = field(default_factory=dict)
    views: ViewBuffer = field(default_factory=ViewBuffer)  # community views, written in batches
    session_url: str | None = None  # where to LISTEN for job ends (None: requests waiting on jobs poll)
    job_waits: JobWaits = field(init=False)

    def __post_init__(self) -> None:
        self.job_waits = JobWaits(self.session_url)

    @property
    def pool(self) -> ConnectionPool[Connection]:
        """Opened on first use, so building the app touches no database."""
        with self._lock:
            if self._pool is None:
                pool = ConnectionPool(
                    self.database_url,
                    min_size=1,
                    max_size=POOL_MAX_CONNECTIONS,
                    # no server-side prepared statements: ENCHANT_DATABASE_URL
                    # may be a pooler in transaction mode
                    kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": None},
                    timeout=POOL_WAIT_S,
                    open=True,
                    name="enchant-api",
                )
                # the row_factory among the kwargs makes the rows dicts, which the pool's type cannot see
                self._pool = cast("ConnectionPool[Connection]", pool)
            return self._pool

    def plugin_validators(self) -> dict[str, Any]:
        """Job types that plugins add (admin-only), with their handlers' validators."""
        known = job_types()
        return {
            t: getattr(self.job_types.get(t), "validate", None)
            for t in self.job_types.job_types
            if t not in known
        }

    def get_cache(self) -> Cache:
        """The TTL caches (story metadata, user preferences). By default the process's shared one, so
        that `serve`'s worker sees the API's invalidations even without Redis."""
        if self.cache is None:
            self.cache = shared_cache(self.settings)
        return self.cache

    def close(self) -> None:
        self.job_waits.close()
        with self._lock:
            if self._pool is not None:
                try:
                    with self._pool.connection(timeout=5.0) as conn:
                        self.views.flush(conn)
                except Exception as exc:  # stopping must not fail; the views are lost, said so
                    import logging

                    logging.getLogger(__name__).warning("community views not written at shutdown: %s", exc)
                self._pool.close()
                self._pool = None

    @contextmanager
    def store(self) -> Iterator[Store]:
        with self.pool.connection() as conn:
            yield Store(conn)

    def secret(self, store: Store, name: str) -> bytes:
        if name not in self._secrets:
            value = store.secret(name)
            if value is None:
                raise ServiceUnavailable(f"the API secret {name!r} is missing; run the migrations")
            self._secrets[name] = value
        return self._secrets[name]


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_conn(state: StateDep) -> Iterator[Connection]:
    try:
        with state.pool.connection() as conn:
            yield conn
    except PoolTimeout as exc:
        raise ServiceUnavailable(f"no database connection available: {exc}") from exc


SessionDep = Annotated[Connection, Depends(get_conn)]


def get_store(conn: SessionDep) -> Store:
    return Store(conn)


StoreDep = Annotated[Store, Depends(get_store)]


def get_queue(conn: SessionDep, settings: SettingsDep) -> JobQueue:
    return JobQueue(
        conn,
        lease_s=settings.lease_seconds,
        retry_base_s=settings.retry_base_s,
        retry_max_s=settings.retry_max_s,
    )


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def get_cache(state: StateDep) -> Cache:
    return state.get_cache()


CacheDep = Annotated[Cache, Depends(get_cache)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def get_principal(
    request: Request,
    store: StoreDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> Principal:
    key = (bearer.credentials if bearer else None) or header_key
    if not key and request.method in ("GET", "HEAD"):
        key = request.cookies.get(KEY_COOKIE)
    if not key:
        raise Unauthorized()
    row = store.authenticate(hash_key(key))
    if row is None:
        raise Unauthorized("unknown or revoked API key; create one with `enchant-worker keys create`")
    return Principal(key_id=row["id"], name=row["name"], role=row["role"], user_id=row["user_id"])


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this route needs an admin key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
