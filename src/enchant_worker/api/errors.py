"""HTTP errors of the API, and the translation of the project's errors at this boundary.

Every error body is `{"detail": "..."}` (a message a person can act on), except validation errors,
which keep FastAPI's `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}` so the field is named.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from enchant_worker.errors import (
    AccessDenied,
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidJob,
    JobNotFound,
    QuotaExceeded,
)
from enchant_worker.jobspecs.limits import MAX_JSON_DEPTH
from enchant_worker.storage import StorageUnavailable

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An error."""

    detail: str


class ApiError(Exception):
    """The request failed."""

    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None):
        super().__init__(detail or (self.__doc__ or "").strip())
        self.detail = str(self)


class BadRequest(ApiError):
    """The request is malformed."""

    status_code = 400


class Unauthorized(ApiError):
    """An API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    """This API key has no right to do that."""

    status_code = 403


class NotFound(ApiError):
    """Not found."""

    status_code = 404


class Conflict(ApiError):
    """The resource is not in a state that allows this."""

    status_code = 409

    def __init__(self, detail: str | None = None, *, status: str | None = None):
        super().__init__(detail)
        self.status = status  # the resource's state, when that is why (the body's `status`)


class Gone(ApiError):
    """This API version has passed its sunset date."""

    status_code = 410


class PayloadTooLarge(ApiError):
    """The upload is too large."""

    status_code = 413


class UnsupportedMediaType(ApiError):
    """The upload is not of an accepted type."""

    status_code = 415


class Unprocessable(ApiError):
    """The input is invalid; `field` names what to fix."""

    status_code = 422

    def __init__(self, field: tuple[str | int, ...], detail: str, kind: str = "value_error"):
        super().__init__(detail)
        self.loc = list(field)
        self.kind = kind


class ServiceUnavailable(ApiError):
    """The service is not ready."""

    status_code = 503


# OpenAPI: the error responses each route may give, by status.
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad request (e.g. a tampered cursor)",
        401: "No or unknown API key",
        403: "Outside this key's rights",
        404: "Unknown id, version or feature",
        409: "Wrong state",
        410: "Version past its sunset",
        413: "Body or upload too large",
        415: "Upload is not an image",
        429: "Too many requests: a quota or rate limit (see Retry-After)",
        503: "Database unavailable",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


COMMON = responses(401, 403, 404, 503)

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*):\s")


def invalid_job_error(exc: InvalidJob, prefix: tuple[str, ...] = ("body", "metadata")) -> Unprocessable:
    """InvalidJob messages start with the field ('seconds: must be ...'): keep it as the location."""
    message = str(exc)
    match = _FIELD.match(message)
    field = _path(match.group(1)) if match else []
    if field and field[0] in REQUEST_FIELDS:  # about the request, not its metadata
        return Unprocessable(("body", *field), message, "invalid_job")
    return Unprocessable(prefix + tuple(field), message, "invalid_job")


def _path(text: str) -> list[str | int]:
    """'loras[0].name' → ['loras', 0, 'name'], as FastAPI locates errors."""
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text)]


# Fields of a job request outside its metadata (a message naming one of them locates it in the body).
REQUEST_FIELDS = frozenset(
    {
        "job_type",
        "priority",
        "max_attempts",
        "entity_type",
        "entity_id",
        "idempotency_key",
        "metadata",
        "quota",
    }
)


def install(app: FastAPI) -> None:
    """Registers the translations of errors into responses."""

    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, Unprocessable):
            return JSONResponse(
                {"detail": [{"loc": exc.loc, "msg": exc.detail, "type": exc.kind}]}, status_code=422
            )
        body: dict[str, Any] = {"detail": exc.detail}
        if status := getattr(exc, "status", None):
            body["status"] = status
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(JobNotFound)
    def _job_not_found(request: Request, exc: JobNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidJob)
    def _invalid_job(request: Request, exc: InvalidJob) -> JSONResponse:
        return _api_error(request, invalid_job_error(exc))

    @app.exception_handler(AccessDenied)
    def _access_denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=403)

    @app.exception_handler(IdempotencyConflict)
    def _idempotency(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "job_id": str(exc.job_id)}, status_code=409)

    @app.exception_handler(QuotaExceeded)
    def _quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(DatabaseUnavailable)
    def _db_down(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(StorageUnavailable)
    def _storage_down(request: Request, exc: StorageUnavailable) -> JSONResponse:
        log.warning("storage error: %s", exc)
        return JSONResponse(
            {"detail": "the file storage is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(psycopg.OperationalError)
    def _db_lost(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database error: %s", exc)
        return JSONResponse({"detail": "the database is unavailable; try again shortly"}, status_code=503)

    @app.exception_handler(psycopg.DataError)
    def _data_error(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # Values the schema lets through but Postgres cannot store (e.g. a NUL character in text).
        message = str(exc).strip().splitlines()[0]
        return JSONResponse(
            {
                "detail": [
                    {"loc": ["body"], "msg": f"value cannot be stored: {message}", "type": "data_error"}
                ]
            },
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's 400 for JSON too deep to parse at all
            body = {
                "detail": [
                    {
                        "loc": ["body"],
                        "msg": f"JSON nested deeper than the limit of {MAX_JSON_DEPTH} "
                        "levels of objects and arrays",
                        "type": "json_too_deep",
                    }
                ]
            }
            return JSONResponse(body, status_code=422)
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = request.app.state.versions.unknown_path_message(request.url.path)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
