"""Loading a configured base model's pipeline from local files (the catalogue is `model_catalog`)."""

from __future__ import annotations

from typing import Any

from enchant_worker import logs
from enchant_worker.errors import ConfigurationError, ModelNotFound
from enchant_worker.model_catalog import ModelSpec

__all__ = ["ModelSpec", "load_pipeline"]


def load_pipeline(spec: ModelSpec, dtype):
    """Load the pipeline of `spec` from local files only (CPU; the caller moves it to its device)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from enchant_worker.generation.tiny_model import ensure_tiny_model

    diffusers_logging.disable_progress_bar()  # worker logs, not terminal bars
    transformers_logging.disable_progress_bar()
    logs.adopt_library_logs()  # their notices in our format, the known ones rewritten

    if spec.builtin == "tiny":
        ensure_tiny_model(spec.path)
    cls = StableDiffusionXLPipeline if spec.family == "sdxl" else StableDiffusionPipeline
    if not spec.path.exists():
        raise ModelNotFound(f"model: the weights of {spec.name!r} are missing at {spec.path}")
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if spec.family == "sd15":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if spec.single_file:
        if spec.config is None or not spec.config.is_dir():
            raise ConfigurationError(f"model {spec.name!r}: its config folder {spec.config} is missing")
        return cls.from_single_file(str(spec.path), config=str(spec.config), **kwargs)
    return cls.from_pretrained(str(spec.path), use_safetensors=True, **kwargs)
