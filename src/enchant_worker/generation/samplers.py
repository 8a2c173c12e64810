"""Sampler names as AUTOMATIC1111 shows them, mapped to diffusers schedulers."""

from __future__ import annotations

from typing import Any

from enchant_worker.jobspecs.generate_image import SAMPLER_NAMES

# name → (scheduler class name, extra config)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "PNDM": ("PNDMScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
}


assert tuple(SAMPLERS) == SAMPLER_NAMES, "jobspecs.generate_image.SAMPLER_NAMES and SAMPLERS must agree"


def make_scheduler(base_config: dict[str, Any], sampler: str):
    """A fresh scheduler for `sampler` with the model's noise schedule (`base_config`)."""
    import diffusers

    class_name, extra = SAMPLERS[sampler]
    return getattr(diffusers, class_name).from_config(base_config, **extra)
