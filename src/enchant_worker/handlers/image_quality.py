"""Image quality of a stored image, for the handlers that store images (generate_image, the LoRA
preview of train_lora): the technical analysis of the file and the prompt alignment where a CLIP model
is configured. Never fails the job: what could not be measured is said so in the result.

Importing this module does not import torch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from enchant_worker.config import Settings
from enchant_worker.errors import ConfigurationError


def clip_scorer(settings: Settings, model: str | None) -> tuple[Any, str]:
    """The resident CLIP scorer for this base model, or None and why none (said in each image's quality)."""
    from enchant_worker.model_catalog import clip_for

    try:
        spec, source = clip_for(Path(settings.models_dir), Path(settings.models_config), model)
    except ConfigurationError as exc:
        return None, str(exc)
    if spec is None:
        return None, source
    try:
        from enchant_worker.generation.clip_alignment import scorer_for
        from enchant_worker.generation.device import resolve_device

        return scorer_for(spec, str(resolve_device(settings.device, "auto").device)), source
    except Exception as exc:  # unloadable weights: skip the alignment, say why
        return None, f"clip model {spec.name!r} could not be loaded: {type(exc).__name__}: {exc}"


def analyse_stored(
    path: Path,
    prompt: str,
    scorer: Any,
    skipped: str,
    timings: dict[str, float],
    *,
    image: Any = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """The quality of the image stored at `path` with its `alignment` (or why it was skipped); the time
    spent is added to timings["quality_s"] and timings["alignment_s"].

    With the image in memory and the SHA-256 of the bytes written, the file is checked against the hash
    and the pixels are analysed from memory (no second PNG decode); otherwise the file is decoded."""
    from enchant_worker.generation.image_quality import analyze_file, analyze_image, check_stored, unreadable

    started = time.perf_counter()
    try:
        if image is not None and sha256 is not None:
            problem = check_stored(path, sha256)
            quality = unreadable(problem) if problem else analyze_image(image)
            image = None if problem else image
        else:
            quality, image = analyze_file(path)
    except Exception as exc:  # the analysis must never cost the job its images
        quality, image = unreadable(f"the analysis failed: {type(exc).__name__}: {exc}"), None
    timings["quality_s"] = timings.get("quality_s", 0.0) + time.perf_counter() - started
    if image is None:
        quality["alignment"] = {"status": "skipped", "reason": "the image file could not be read"}
    elif scorer is None:
        quality["alignment"] = {"status": "skipped", "reason": skipped}
    else:
        started = time.perf_counter()
        try:
            quality["alignment"] = scorer.similarity(prompt, image)
        except Exception as exc:  # a broken CLIP model costs the alignment, not the image
            quality["alignment"] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        timings["alignment_s"] = timings.get("alignment_s", 0.0) + time.perf_counter() - started
    return quality
