"""What the compatibility APIs share: the caller (Bearer, X-API-Key or the password of HTTP Basic),
waiting on a job's row, reading its PNGs, and a route class that answers errors in a protocol's shape."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from enchant_worker.api.auth import Principal, hash_key
from enchant_worker.api.deps import ApiState
from enchant_worker.api.errors import ApiError, Unauthorized, Unprocessable
from enchant_worker.errors import AccessDenied, InvalidJob, JobNotFound, QuotaExceeded
from enchant_worker.storage import Storage

WAIT_FOR_JOB_S = 900.0  # an A1111 or OpenAI client waits on one HTTP request for its images
FINISHED = ("completed", "failed", "cancelled")


def caller(request: Request, state: ApiState, *, basic: bool = True) -> Principal:
    """The API key from `Authorization: Bearer KEY`, `X-API-Key: KEY`, or (A1111's `--api-auth`
    style) `Authorization: Basic base64(USER:KEY)`, where the user name is ignored."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    key: str | None = None
    if scheme.lower() == "bearer":
        key = value.strip()
    elif scheme.lower() == "basic" and basic:
        try:
            key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the HTTP Basic credentials are not base64 of USER:PASSWORD") from None
    key = key or request.headers.get("x-api-key")
    if not key:
        raise Unauthorized(
            "an API key is required: send it as `Authorization: Bearer KEY`"
            + (" or as the password of HTTP Basic authentication" if basic else "")
        )
    with state.store() as store:
        row = store.authenticate(hash_key(key))
    if row is None:
        raise Unauthorized("unknown or revoked API key; create one with `enchant-worker keys create`")
    return Principal(key_id=row["id"], name=row["name"], role=row["role"], user_id=row["user_id"])


def principal_ref(principal: Principal) -> str:
    """Whose client options these are: the user's, or an admin key's own."""
    return f"user:{principal.user_id}" if principal.user_id is not None else f"key:{principal.key_id}"


def wait_for_job(state: ApiState, job_id: uuid.UUID, timeout_s: float = WAIT_FOR_JOB_S) -> dict[str, Any]:
    """The job's row once it has finished. Reads the row (a pool connection for each read, never held
    while waiting) again when the job's end is notified (api.job_waits), or polls without a listener."""
    deadline = time.monotonic() + timeout_s
    with state.job_waits.watch(job_id) as waiting:
        while True:
            waiting.arm()
            with state.store() as store:
                row = store.job(job_id)
            if row is None:
                raise JobNotFound(f"job {job_id} is gone")
            if row["status"] in FINISHED:
                return row
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"job {job_id} has not finished after {timeout_s:.0f} s; it is still queued "
                    f"(GET /v2/jobs/{job_id} shows it)"
                )
            waiting.wait(left)


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    seed: int
    width: int
    height: int
    parameters: str  # the PNG's AUTOMATIC1111 `parameters` text
    path: str  # storage-relative


def job_images(storage: Storage, result: dict[str, Any] | None) -> list[StoredImage]:
    """The PNGs a finished generate_image job wrote, with their `parameters` text."""
    import io

    from PIL import Image

    images = []
    for entry in (result or {}).get("images", []):
        data = storage.get_bytes(entry["path"])
        with Image.open(io.BytesIO(data)) as image:
            text = image.text.get("parameters", "")  # type: ignore[attr-defined]
        images.append(
            StoredImage(
                data, int(entry["seed"]), int(entry["width"]), int(entry["height"]), text, entry["path"]
            )
        )
    return images


# -- errors in a protocol's own shape -------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    status: int
    message: str
    kind: str  # the error's class name, or a protocol's code
    field: str | None = None
    headers: dict[str, str] | None = None


def failure_of(exc: Exception) -> Failure | None:
    """The project's errors as (status, message); None for an error this layer does not know."""
    if isinstance(exc, RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x != "body"]
            parts.append(f"{'.'.join(loc) or 'body'}: {e.get('msg', '')}")
        first: dict[str, Any] = next((e for e in exc.errors()), {})
        field = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        return Failure(422, "; ".join(parts) or "invalid request", "RequestValidationError", field)
    if isinstance(exc, QuotaExceeded):
        return Failure(429, str(exc), "QuotaExceeded", "quota", {"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, AccessDenied):
        return Failure(403, str(exc), "AccessDenied", exc.field)
    if isinstance(exc, InvalidJob):
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message and " " not in message.split(":", 1)[0] else None
        return Failure(422, message, type(exc).__name__, field)
    if isinstance(exc, Unprocessable):
        return Failure(
            422, exc.detail, "ValidationError", ".".join(str(x) for x in exc.loc if x != "body") or None
        )
    if isinstance(exc, ApiError):
        return Failure(exc.status_code, exc.detail, type(exc).__name__, None, exc.headers)
    if isinstance(exc, JobNotFound):
        return Failure(404, str(exc), "JobNotFound")
    if isinstance(exc, TimeoutError):
        return Failure(504, str(exc), "TimeoutError")
    return None


def route_class(
    shape: Callable[[Failure], dict[str, Any]],
    headers: Callable[[Failure], dict[str, str]] | None = None,
    statuses: dict[int, int] | None = None,
) -> type[APIRoute]:
    """An APIRoute whose errors (validation, auth, intake, quotas) come back as `shape(failure)`, with
    the status codes `statuses` maps to others (OpenAI answers invalid requests with 400, not 422)."""

    class CompatRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    failure = failure_of(exc)
                    if failure is None:
                        raise
                    extra = dict(failure.headers or {})
                    if headers is not None:
                        extra.update(headers(failure))
                    status = (statuses or {}).get(failure.status, failure.status)
                    return JSONResponse(shape(failure), status_code=status, headers=extra)

            return answer

    return CompatRoute
