"""Errors of the generation layer, within the project's one hierarchy (`enchant_worker.errors`)."""

from __future__ import annotations

from enchant_worker.errors import ConfigurationError, EnchantError, InvalidJob, JobCancelled, ModelNotFound


class InvalidGeneration(InvalidJob):
    """The generation request is invalid."""


class LoraRefused(InvalidGeneration):
    """The LoRA file cannot be used: only .safetensors files inside the model and storage folders load."""


class GenerationFailed(EnchantError):
    """The generation failed."""


class BrokenImage(GenerationFailed):
    """An image came out broken (NaN or black); it was not kept."""


class OutOfMemory(GenerationFailed):
    """The GPU ran out of memory even at batch size 1; lower the size or free the GPU."""


class GenerationCancelled(JobCancelled):
    """The generation was cancelled; the remaining steps and the VAE decode were skipped."""


__all__ = [
    "BrokenImage",
    "ConfigurationError",
    "GenerationCancelled",
    "GenerationFailed",
    "InvalidGeneration",
    "LoraRefused",
    "ModelNotFound",
    "OutOfMemory",
]
