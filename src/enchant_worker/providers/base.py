"""The image-provider protocol, after the seed's `ImageGenerationProvider`.

A third-party provider is any object with these attributes and methods, exposed through the entry
point group `enchant_worker.providers` (see `registry.py`). Optional: `generate_batch(requests,
on_progress, is_cancelled)`, one answer per request (its GenerationResult or its own error), for
cross-job batching (the local provider has it; other providers draw each job alone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Capabilities a provider may declare (free-form strings; these are the ones selection looks at).
CAP_TEXT_TO_IMAGE = "text_to_image"
CAP_LORA = "lora"
CAP_NEGATIVE_PROMPT = "negative_prompt"
CAP_SEED = "seed"
CAP_ARTISTIC = "artistic"  # the seed's "artistic" style preference (midjourney in its example)


@dataclass(frozen=True)
class LoraInput:
    name: str
    path: str
    strength: float


@dataclass(frozen=True)
class GenerationRequest:
    """What a provider is asked to draw. `parameters` are provider-specific and validated by it."""

    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    loras: Sequence[LoraInput] = ()


@dataclass
class GenerationResult:
    images: list  # PIL images
    seeds: list[int]
    model: str
    parameters: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. LoRA hashes, device


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str | None = None
    description: str = ""
    default_parameters: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    errors: tuple[str, ...] = ()  # each names the field and the allowed range


ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]


@runtime_checkable
class ImageProvider(Protocol):
    name: str
    capabilities: frozenset[str]
    cost_per_image: float  # in the operator's currency; 0.0 for local generation

    @property
    def models(self) -> list[str]: ...

    @property
    def default_parameters(self) -> dict[str, Any]: ...

    def is_available(self) -> bool: ...

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressFn | None = None,
        is_cancelled: CancelledFn | None = None,
    ) -> GenerationResult: ...

    def get_model_info(self, model_name: str) -> ModelInfo: ...

    def validate_parameters(self, params: Mapping[str, Any]) -> ValidationResult: ...
