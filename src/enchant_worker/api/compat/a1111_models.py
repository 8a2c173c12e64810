"""AUTOMATIC1111's API shapes (after its `modules/api/models.py`): requests, responses, error body.

Fields we do not act on (hires fix, restore faces, scripts...) are accepted and ignored, as
AUTOMATIC1111 ignores what a script does not use; `subseed` is ignored with a note in `info`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from enchant_worker.api.compat.common import Failure

# AUTOMATIC1111's scheduler names we honour, and how each combines with a sampler name.
SCHEDULERS = {"automatic": "Automatic", "uniform": "Uniform", "karras": "Karras"}
KARRAS_SAMPLERS = {"DPM++ 2M": "DPM++ 2M Karras"}


class Txt2ImgRequest(BaseModel):
    """POST /sdapi/v1/txt2img (StableDiffusionTxt2ImgProcessingAPI): the fields acted on."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = Field(default_factory=list)
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    sampler_name: str | None = None
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: int = Field(default=1, ge=1)
    n_iter: int = Field(default=1, ge=1)
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    override_settings: dict[str, Any] = Field(default_factory=dict)
    send_images: bool = True
    save_images: bool = False


class ImageResponse(BaseModel):
    """TextToImageResponse: base64 PNGs, the request's parameters, and `info` as a JSON string."""

    images: list[str]
    parameters: dict[str, Any]
    info: str


class OptionsUpdate(BaseModel):
    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None


class PngInfoRequest(BaseModel):
    image: str = Field(description="a PNG as base64 (a data: URL prefix is allowed)")


class PngInfoResponse(BaseModel):
    info: str
    items: dict[str, Any]
    parameters: dict[str, Any]


class ProgressState(BaseModel):
    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0


class ProgressResponse(BaseModel):
    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None = None
    textinfo: str | None = None


def error_body(failure: Failure) -> dict[str, Any]:
    """AUTOMATIC1111's error body (`api.py`'s handler): error, detail, body, errors."""
    return {
        "error": failure.kind,
        "detail": failure.message,
        "body": "",
        "errors": failure.message,
        **({"field": failure.field} if failure.field else {}),
    }


def auth_headers(failure: Failure) -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="enchant-worker", Bearer'} if failure.status == 401 else {}


_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def a1111_fields(text: str) -> dict[str, Any]:
    """A `parameters` text as AUTOMATIC1111's `parse_generation_parameters` reads it: Prompt (with its
    `<lora:...>` tags), Negative prompt, and each setting ('Size' as Size-1 and Size-2)."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in _PARAM.findall(last):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        size = _SIZE.match(value)
        if size:
            fields[f"{key}-1"], fields[f"{key}-2"] = size.group(1), size.group(2)
        else:
            fields[key] = value
    return fields
