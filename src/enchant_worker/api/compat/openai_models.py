"""OpenAI's Images API shapes (its published reference): the generation request, the image list, and
the error body `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from enchant_worker.api.compat.common import Failure


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # quality, style... accepted and ignored

    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(default=1, ge=1)
    size: str | None = None
    response_format: Literal["url", "b64_json"] = "url"
    user: str | None = Field(default=None, max_length=200)


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]


_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    429: "insufficient_quota",
    500: "server_error",
    503: "server_error",
    504: "server_error",
}
_CODES = {401: "invalid_api_key", 403: "permission_denied", 429: "insufficient_quota", 504: "timeout"}


def error_body(failure: Failure) -> dict[str, Any]:
    return {
        "error": {
            "message": failure.message,
            "type": _TYPES.get(failure.status, "invalid_request_error"),
            "param": failure.field,
            "code": _CODES.get(failure.status),
        }
    }
