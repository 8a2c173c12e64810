"""Health, readiness, versions and Prometheus metrics (outside the versioned routes)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from enchant_worker.api.deps import PrincipalDep, StateDep, get_principal, require_admin
from enchant_worker.api.errors import responses
from enchant_worker.api.schemas import Health, VersionPublic
from enchant_worker.db.migrate import check
from enchant_worker.errors import EnchantError

router = APIRouter()
_scrape_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ScrapeTokenOrAdminKey",
    description="Authorization: Bearer <ENCHANT_METRICS_TOKEN or an admin API key>",
)


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> Health:
    """The process is up (no key needed, touches nothing)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["health"], responses={503: {"model": Health}})
def readyz(state: StateDep) -> Response:
    """Ready to serve: the database answers and every migration is applied (no key needed)."""
    try:
        with state.pool.connection(timeout=5.0) as conn:
            pending = check(conn, state.settings.migrations_dir)
    except Exception as exc:  # any failure to reach or read the database means: not ready
        message = (
            str(exc).strip()
            if isinstance(exc, EnchantError)
            else f"database unreachable: {type(exc).__name__}"
        )
        return JSONResponse(Health(status="unavailable", detail=message).model_dump(), status_code=503)
    if pending:
        names = [m.version for m in pending]
        return JSONResponse(
            Health(
                status="unavailable",
                detail="migrations not applied: run `enchant-worker migrate`",
                pending_migrations=names,
            ).model_dump(),
            status_code=503,
        )
    return JSONResponse(Health(status="ready").model_dump())


@router.get("/versions", response_model=list[VersionPublic], tags=["versions"], responses=responses(401))
def versions(state: StateDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The API versions with their features, deprecation and sunset date."""
    return state.versions.describe()


@router.get(
    "/metrics",
    response_class=Response,
    tags=["metrics"],
    responses={
        **responses(401, 403),
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
    },
)
def metrics(
    request: Request,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_scrape_bearer)],
) -> Response:
    """Prometheus metrics: queue depth by status and type, job counters and duration histograms,
    worker heartbeats, GPU memory. Send the scrape token (`ENCHANT_METRICS_TOKEN`) or an admin key as
    `Authorization: Bearer ...` (Prometheus: `authorization: {credentials_file: ...}`)."""
    if not _is_scrape_token(state.settings.metrics_token, bearer):
        with state.store() as store:
            require_admin(get_principal(request, store, bearer, request.headers.get("X-API-Key")))
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)


def _is_scrape_token(token: SecretStr | None, bearer: HTTPAuthorizationCredentials | None) -> bool:
    """Compared in constant time, so the response time tells nothing about the token."""
    if token is None or bearer is None:
        return False
    return hmac.compare_digest(bearer.credentials.encode(), token.get_secret_value().encode())
