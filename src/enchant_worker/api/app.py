"""The control plane's FastAPI app: versioned routes (/v1, /v2), health, metrics and the dashboard.

Nothing here imports torch or the ML layers: the API process starts in about a second.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from enchant_worker import __version__
from enchant_worker.api import errors
from enchant_worker.api.auth import Principal
from enchant_worker.api.deps import ApiState, JobTypes, Limits, PrincipalDep
from enchant_worker.api.docs import DOCS_STATIC_URL, SWAGGER_UI_PARAMETERS, DocsPolicy
from enchant_worker.api.metrics import make_registry
from enchant_worker.api.routes import (
    analysis,
    books,
    catalog,
    community,
    dashboard,
    events,
    exports,
    images,
    jobs,
    loras,
    media,
    openai_images,
    presets,
    queue,
    sdapi,
    stories,
    story_settings,
    system,
    uploads,
    users,
)
from enchant_worker.api.uploads import BodyLimit, is_other_body, is_upload
from enchant_worker.api.versions import API_VERSIONS, VersionInfo, Versions
from enchant_worker.cache import Cache
from enchant_worker.config import Settings, get_settings

log = logging.getLogger(__name__)

# Each versioned router with the feature it belongs to.
FEATURE_ROUTERS = [
    jobs,
    queue,
    presets,
    images,
    catalog,
    loras,
    uploads,
    stories,
    users,
    exports,
    community,
    books,
    story_settings,
    analysis,
    events,
]


class NoJobTypes:
    """Used when the app is built without the worker's handler registry: no job type can be created."""

    job_types: list[str] = []

    def get(self, job_type: str) -> Any:
        return None


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    job_types: JobTypes | None = None,
    versions: Mapping[str, VersionInfo] | None = None,
    limits: Limits | None = None,
    cache: Cache | None = None,
    session_url: str | None = None,
) -> FastAPI:
    """The app. `job_types` is the worker's handler registry (`handlers.default_registry()`),
    passed in so that job creation validates each type's metadata with its handler's `validate`.
    `cache` defaults to the process's `shared_cache(settings)` (Redis when ENCHANT_REDIS_URL is set).
    `session_url` (`Database.session_url`: the server itself) is where requests waiting on a job LISTEN
    for its end; without it they poll.
    Building the app opens no connection: the pool opens on the first request."""
    settings = settings or get_settings()
    if database_url is None:
        from enchant_worker.db.connection import database_url as configured_url

        database_url = configured_url(settings)
    state = ApiState(
        settings=settings,
        database_url=database_url,
        job_types=job_types or NoJobTypes(),
        versions=Versions(versions or API_VERSIONS),
        limits=limits or Limits.from_settings(settings),
        cache=cache,
        session_url=session_url,
    )
    state.metrics = make_registry(state.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    # /docs and /redoc load Swagger UI and ReDoc from this server, not a CDN (see api.docs).
    app = FastAPIOffline(
        title="Enchant Worker control API",
        version=__version__,
        lifespan=lifespan,
        static_url=DOCS_STATIC_URL,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        description="Submit and watch jobs, manage LoRA styles and presets, see queues and "
        "GPUs. Send an API key as `Authorization: Bearer <key>` or `X-API-Key`. Versions: "
        + ", ".join(f"/{v}" for v in state.versions.names)
        + " (see GET /versions).",
    )
    app.state.api = state
    app.state.versions = state.versions
    errors.install(app)
    app.include_router(system.router)
    app.include_router(dashboard.router)
    app.include_router(media.router)
    app.include_router(sdapi.router)  # AUTOMATIC1111's web API
    app.include_router(openai_images.router)  # OpenAI's Images API
    for version in state.versions.names:
        for module in FEATURE_ROUTERS:
            if state.versions.supports(version, module.FEATURE):
                app.include_router(module.router, prefix=f"/{version}")
            else:
                app.include_router(
                    _missing_feature(module.router, module.FEATURE, version, state.versions),
                    prefix=f"/{version}",
                )
    app.add_middleware(
        BodyLimit,
        max_bytes=state.limits.upload_total_bytes,
        applies=is_upload,
        what="the upload",
        setting="ENCHANT_UPLOAD_MAX_REQUEST_BYTES",
    )
    app.add_middleware(
        BodyLimit,
        max_bytes=state.limits.json_body_bytes,
        applies=is_other_body,
        what="the request body",
        setting="ENCHANT_REQUEST_MAX_JSON_BYTES",
    )
    app.add_middleware(VersionHeaders, versions=state.versions)
    app.add_middleware(DocsPolicy)
    return app


def _missing_feature(router: APIRouter, feature: str, version: str, versions: Versions) -> APIRouter:
    """The routes of a feature this version lacks: each answers 404 naming the versions that have it."""
    gate = APIRouter()
    for route in router.routes:
        assert isinstance(route, APIRoute)  # a router of endpoints, no mounts
        message = versions.feature_missing_message(version, feature, f"/{version}{route.path}")
        gate.add_api_route(
            route.path, _not_in_version(message), methods=sorted(route.methods or ()), include_in_schema=False
        )
    return gate


def _not_in_version(message: str) -> Callable[[Principal], None]:
    def endpoint(principal: PrincipalDep) -> None:
        raise errors.NotFound(message)

    return endpoint


class VersionHeaders:
    """Marks the request with its API version; a deprecated version gets Deprecation and Sunset
    headers, and one past its sunset date answers 410."""

    def __init__(self, app: ASGIApp, *, versions: Versions):
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        version = scope["path"].strip("/").split("/", 1)[0]
        if version not in self.versions.table:
            await self.app(scope, receive, send)
            return
        scope["api_version"] = version
        extra = [(k.lower().encode(), v.encode()) for k, v in self.versions.headers(version).items()]
        if self.versions.past_sunset(version):
            supported = [v for v in self.versions.names if not self.versions.past_sunset(v)]
            body = json.dumps(
                {
                    "detail": f"API {version} was retired on {self.versions.table[version].sunset_date}; "
                    f"use {', '.join('/' + v for v in supported) or 'a newer version'}"
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 410,
                    "headers": [(b"content-type", b"application/json"), *extra],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
