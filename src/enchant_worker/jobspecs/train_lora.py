"""The LoRA training request: the seed's `LoRATrainingRequest` plus the knobs a trainer needs.

Accepts the seed's shape (`training_parameters: {learning_rate, batch_size, epochs, resolution}`, also
spelled `parameters` as `initiateLoRATraining` writes it into the job's metadata) and a flat one.
`parse_training_request()` turns any validation failure into `InvalidJob` naming the field, the
allowed range and the value received (`jobspecs.base.explain`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from enchant_worker.jobspecs.base import WRITE, JobSpec, Ref, parse

MAX_TRIGGER_WORDS = 10

MixedPrecision = Literal["auto", "no", "fp16", "bf16"]
LRScheduler = Literal["constant", "constant_with_warmup", "linear", "cosine"]


class LoRATrainingSpec(JobSpec):
    """What to train. Ranges are checked here; images are checked by `dataset.prepare_dataset`."""

    # The LoRA row this job trains (set by `initiate_lora_training`; its owner alone may train it).
    lora_model_id: Annotated[uuid.UUID | None, Ref("lora_training", WRITE)] = None
    # The seed's request.
    user_id: Annotated[uuid.UUID | None, Ref("user")] = None
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    # Upload ids (or storage paths under the user's uploads); admins and the CLI: ENCHANT_TRAINING_DIRS folders.
    training_images: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]], Ref("training_source")
    ] = Field(min_length=1, max_length=1000)
    base_model: Annotated[str, Ref("base_model")] = Field(min_length=1, max_length=500)
    trigger_words: list[str] = Field(default_factory=list, max_length=MAX_TRIGGER_WORDS)
    learning_rate: float = Field(default=1e-4, ge=1e-6, le=1e-2)
    batch_size: int = Field(default=1, ge=1, le=16)
    epochs: int = Field(default=10, ge=1, le=1000)
    resolution: int = Field(default=512, ge=16, le=2048, multiple_of=8)
    # Added by the issue.
    rank: int = Field(default=16, ge=1, le=256)
    alpha: float | None = Field(default=None, gt=0, le=1024)  # None: alpha = rank (scale 1)
    max_train_steps: int | None = Field(default=None, ge=1, le=100_000)  # overrides epochs
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    mixed_precision: MixedPrecision = "auto"
    gradient_checkpointing: bool = False
    train_text_encoder: bool = False
    captions: dict[str, str] = Field(default_factory=dict)  # image file name → caption (wins over .txt)
    # Training recipe.
    lr_scheduler: LRScheduler = "constant"
    lr_warmup_steps: int = Field(default=0, ge=0, le=10_000)
    snr_gamma: float | None = Field(default=None, gt=0, le=20)  # min-SNR weighting (5.0 is usual)
    noise_offset: float = Field(default=0.0, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0, le=100)
    checkpoint_every: int = Field(default=100, ge=1, le=100_000)  # steps

    @model_validator(mode="before")
    @classmethod
    def _flatten_seed_parameters(cls, data: Any) -> Any:
        """Lift the seed's nested `training_parameters` (or `parameters`) to the top level."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("training_parameters", "parameters"):
            nested = data.pop(key, None)
            if isinstance(nested, dict):
                for name, value in nested.items():
                    data.setdefault(name, value)
            elif nested is not None:
                raise ValueError(f"{key} must be an object")
        return data

    @field_validator("trigger_words")
    @classmethod
    def _check_trigger_words(cls, words: list[str]) -> list[str]:
        cleaned = [w.strip() for w in words]
        for word in cleaned:
            if not word or len(word) > 50 or "," in word:
                raise ValueError(f"each trigger word must be 1 to 50 characters without commas, got {word!r}")
        return cleaned

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else self.rank)

    @property
    def file_stem(self) -> str:
        """`name` as a safe file name: `Ink & Wash` → `ink-wash`."""
        stem = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return stem or "lora"

    def usage(self) -> dict[str, int]:
        return {"trainings": 1}

    def entity(self) -> tuple[str, uuid.UUID] | None:
        return ("lora_model", self.lora_model_id) if self.lora_model_id is not None else None

    def fingerprint(self) -> str:
        """A hash of everything that shapes the trained weights; a checkpoint resumes only the same one."""
        shaping = self.model_dump(
            mode="json",
            exclude={
                "lora_model_id",
                "user_id",
                "name",
                "description",
                "checkpoint_every",
                "training_images",
                "captions",
            },
        )
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def parse_training_request(data: dict[str, Any]) -> LoRATrainingSpec:
    """Validate a request (a job's metadata or the CLI's options); raise `InvalidJob` naming each bad field."""
    return parse(LoRATrainingSpec, data)
