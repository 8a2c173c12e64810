"""Remote providers: `a1111` (any AUTOMATIC1111-compatible server, another Enchant Worker included) and
`openai` (OpenAI's Images API or a compatible server). Torch-free. The API key comes from the
environment variable the configuration names (`api_key_env`), read at start-up: a missing secret stops
the worker at once, and the key is never put in a job row, a result or a message."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from enchant_worker.errors import ConfigurationError
from enchant_worker.providers.base import (
    CAP_NEGATIVE_PROMPT,
    CAP_SEED,
    CAP_TEXT_TO_IMAGE,
    CancelledFn,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    ProgressFn,
    ValidationResult,
)
from enchant_worker.providers.http import HttpPolicy, ProviderError, request_json

AVAILABILITY_TTL_S = 10.0
AVAILABILITY_TIMEOUT_S = 2.0


def secret_from_env(name: str, variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigurationError(
            f"provider {name}: the environment variable {variable} (api_key_env) is not set; "
            "set it to the provider's API key before starting the worker"
        )
    return value


def decode_png(name: str, text: Any) -> Any:
    """A base64 image from a provider as a PIL image, fully read (a truncated file is refused here)."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(text, str):
        raise ProviderError(f"provider {name}: an image is not a base64 string")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        image.load()
        return image.convert("RGB")
    except (binascii.Error, ValueError):
        raise ProviderError(f"provider {name}: an image is not valid base64") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ProviderError(
            f"provider {name}: an image cannot be read ({exc}); truncated or not an image"
        ) from None


class _Remote:
    capabilities = frozenset({CAP_TEXT_TO_IMAGE, CAP_NEGATIVE_PROMPT, CAP_SEED})

    def __init__(
        self,
        name: str,
        url: str,
        model: str | None = None,
        api_key_env: str | None = None,
        cost_per_image: float = 0.0,
        timeout_s: float = 120.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_response_bytes: int = 64 * 2**20,
        capabilities: list[str] | None = None,
        **unknown: Any,
    ):
        if unknown:
            raise ConfigurationError(f"provider {name}: unknown setting(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.url = url.rstrip("/")
        self.model = model
        self.cost_per_image = float(cost_per_image)
        self.policy = HttpPolicy(float(timeout_s), int(retries), float(backoff_s), int(max_response_bytes))
        self._key = secret_from_env(name, api_key_env)
        if capabilities:
            self.capabilities = frozenset(self.capabilities | set(capabilities))
        self._available: tuple[float, bool] | None = None

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.name!r}, {self.url!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    @property
    def models(self) -> list[str]:
        return [self.model] if self.model else []

    @property
    def default_parameters(self) -> dict[str, Any]:
        return {}

    def get_model_info(self, model_name: str) -> ModelInfo:
        return ModelInfo(model_name, None, f"{model_name} at {self.url}")

    def validate_parameters(self, params: Mapping[str, Any]) -> ValidationResult:
        return ValidationResult(True)

    def is_available(self) -> bool:
        """A cheap request answered within 2 s (remembered for 10 s)."""
        now = time.monotonic()
        if self._available is not None and now - self._available[0] < AVAILABILITY_TTL_S:
            return self._available[1]
        try:
            request_json(
                self.name,
                "GET",
                self._probe_url(),
                None,
                self._headers,
                HttpPolicy(AVAILABILITY_TIMEOUT_S, 0, 0.0, 4 * 2**20),
            )
            ok = True
        except ProviderError:
            ok = False
        self._available = (now, ok)
        return ok

    def _probe_url(self) -> str:
        raise NotImplementedError


class A1111Provider(_Remote):
    """An AUTOMATIC1111-compatible server (`url` is its root; the API is under /sdapi/v1)."""

    def _probe_url(self) -> str:
        return f"{self.url}/sdapi/v1/sd-models"

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressFn | None = None,
        is_cancelled: CancelledFn | None = None,
    ) -> GenerationResult:
        p = dict(request.parameters)
        count = int(p.get("count", 1))
        seed = int(p["seed"]) if p.get("seed") is not None else -1
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": seed,
            "batch_size": count,
            "n_iter": 1,
            "send_images": True,
        }
        for ours, theirs in (
            ("steps", "steps"),
            ("cfg_scale", "cfg_scale"),
            ("width", "width"),
            ("height", "height"),
            ("sampler", "sampler_name"),
        ):
            if p.get(ours) is not None:
                body[theirs] = p[ours]
        model = request.model or self.model
        if model:
            body["override_settings"] = {"sd_model_checkpoint": model}
        started = time.perf_counter()
        answer = request_json(
            self.name,
            "POST",
            f"{self.url}/sdapi/v1/txt2img",
            body,
            self._headers,
            self.policy,
            is_cancelled,
            self._interrupt,
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("images"), list):
            raise ProviderError(f"provider {self.name}: the txt2img answer has no list of images")
        images = [decode_png(self.name, x) for x in answer["images"]]
        if not images:
            raise ProviderError(
                f"provider {self.name}: the txt2img answer holds no image (interrupted there?)"
            )
        try:
            info = json.loads(answer.get("info") or "{}")
        except ValueError:
            info = {}
        seeds = info.get("all_seeds") or (
            [seed + i for i in range(len(images))] if seed >= 0 else [0] * len(images)
        )
        used = {
            "width": images[0].width,
            "height": images[0].height,
            "steps": info.get("steps", body.get("steps")),
            "cfg_scale": info.get("cfg_scale", body.get("cfg_scale")),
            "sampler": info.get("sampler_name", body.get("sampler_name")),
        }
        return GenerationResult(
            images=images,
            seeds=[int(s) for s in seeds[: len(images)]],
            model=info.get("sd_model_name") or model or "remote",
            parameters=used,
            timings_s={"remote_s": time.perf_counter() - started},
            details={
                "model_hash": info.get("sd_model_hash"),
                "remote": self.url,
                "cost": self.cost_per_image * len(images),
            },
        )

    def _interrupt(self) -> None:
        request_json(
            self.name,
            "POST",
            f"{self.url}/sdapi/v1/interrupt",
            {},
            self._headers,
            HttpPolicy(AVAILABILITY_TIMEOUT_S, 0, 0.0, 2**20),
        )


class OpenAIProvider(_Remote):
    """OpenAI's Images API or a compatible server (`url` ends with /v1)."""

    def _probe_url(self) -> str:
        return f"{self.url}/models" if "api.openai.com" in self.url else f"{self.url}/images/generations"

    def is_available(self) -> bool:
        # a compatible server may have no GET route: any HTTP answer means it is up
        now = time.monotonic()
        if self._available is not None and now - self._available[0] < AVAILABILITY_TTL_S:
            return self._available[1]
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(
                urllib.request.Request(self._probe_url(), headers=self._headers),
                timeout=AVAILABILITY_TIMEOUT_S,
            ).close()
            ok = True
        except urllib.error.HTTPError:
            ok = True
        except (urllib.error.URLError, OSError):
            ok = False
        self._available = (now, ok)
        return ok

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressFn | None = None,
        is_cancelled: CancelledFn | None = None,
    ) -> GenerationResult:
        p = dict(request.parameters)
        count = int(p.get("count", 1))
        body: dict[str, Any] = {"prompt": request.prompt, "n": count, "response_format": "b64_json"}
        if request.model or self.model:
            body["model"] = request.model or self.model
        if p.get("width") and p.get("height"):
            body["size"] = f"{p['width']}x{p['height']}"
        started = time.perf_counter()
        answer = request_json(
            self.name,
            "POST",
            f"{self.url}/images/generations",
            body,
            self._headers,
            self.policy,
            is_cancelled,
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not data:
            raise ProviderError(f"provider {self.name}: the answer has no 'data' list of images")
        images = [decode_png(self.name, d.get("b64_json") if isinstance(d, dict) else None) for d in data]
        warnings = [
            "the OpenAI Images API takes no seed, steps, CFG scale or negative prompt; the images "
            "cannot be reproduced from their parameters"
        ]
        return GenerationResult(
            images=images,
            seeds=[0] * len(images),
            model=body.get("model", "remote"),
            parameters={
                "width": images[0].width,
                "height": images[0].height,
                "steps": 0,
                "cfg_scale": 0.0,
                "sampler": "remote",
            },
            timings_s={"remote_s": time.perf_counter() - started},
            warnings=warnings,
            details={"remote": self.url, "cost": self.cost_per_image * len(images)},
        )


REMOTE_TYPES = {"a1111": A1111Provider, "openai": OpenAIProvider}
