"""OpenAI's Images API under /openai/v1: `POST /images/generations` as a queued generate_image job
(intake: rights, tier, quotas), awaited on its row. `model` is a name from configs/models.toml;
`response_format` b64_json or url (an expiring signed URL of the stored PNG)."""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, Request

from enchant_worker.api.compat import openai_models as m
from enchant_worker.api.compat.common import caller, job_images, route_class, wait_for_job
from enchant_worker.api.errors import ApiError
from enchant_worker.api.serving import signed_url
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.jobspecs.generate_image import COUNT_RANGE, parse_size
from enchant_worker.model_catalog import ModelRegistry
from enchant_worker.storage import storage_for

router = APIRouter(
    prefix="/openai/v1",
    tags=["openai"],
    include_in_schema=False,
    route_class=route_class(m.error_body, statuses={422: 400}),
)
URL_LIFETIME_S = 3600  # OpenAI's image URLs expire after an hour too


class GenerationFailed(ApiError):
    """The job failed."""

    status_code = 500


@router.post("/images/generations", response_model=m.ImagesResponse, response_model_exclude_none=True)
def create_images(body: m.ImageGenerationRequest, request: Request) -> dict[str, Any]:
    state = request.app.state.api
    principal = caller(request, state, basic=False)
    registry = ModelRegistry.from_settings(state.settings)
    if body.model is not None and body.model not in registry.models:
        raise InvalidJob(
            f"model: unknown model {body.model!r}; configured models: {', '.join(registry.names())}"
        )
    if body.n > COUNT_RANGE[1]:
        raise InvalidJob(f"n: at most {COUNT_RANGE[1]} images per request, not {body.n}")
    metadata: dict[str, Any] = {
        "prompt": body.prompt,
        "count": body.n,
        "story_styles": False,
        "model": registry.get(body.model).name,
    }
    if body.size is not None:
        width, height = parse_size(body.size)
        metadata.update(width=width, height=height)
    with state.store() as store:
        job_id = submit(store.conn, principal.actor, JobRequest("generate_image", metadata), state.settings)
    row = wait_for_job(state, job_id)
    if row["status"] != "completed":
        raise GenerationFailed(f"job {job_id} {row['status']}: {row['error_message'] or 'no images'}")
    images = job_images(storage_for(state.settings), row["result"])
    data = []
    if body.response_format == "b64_json":
        data = [{"b64_json": base64.b64encode(img.data).decode("ascii")} for img in images]
    else:
        with state.store() as store:
            secret = state.secret(store, "files")
        for img in images:
            url, _ = signed_url(state.settings, secret, img.path, URL_LIFETIME_S)
            if url.startswith("/"):
                url = str(request.base_url).rstrip("/") + url
            data.append({"url": url})
    return {"created": int(time.time()), "data": data}
