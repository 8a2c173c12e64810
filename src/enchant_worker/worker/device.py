"""What accelerator this worker has, for the workers table. torch is imported only by GPU workers."""

from __future__ import annotations

import platform
from typing import Any


def describe(needs_gpu: bool) -> dict[str, Any]:
    if needs_gpu:
        try:
            import torch

            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return {
                    "kind": "cuda",
                    "name": props.name,
                    "memory_total_mb": props.total_memory // 2**20,
                    "count": torch.cuda.device_count(),
                }
        except ImportError:
            pass
    return {"kind": "cpu", "name": platform.processor() or platform.machine()}


CUDA_BATCH_SIZE = 4  # compatible generate_image jobs per call on a GPU unless configured


def generation_batch_size(configured: int | None, device: str) -> int:
    """How many generate_image jobs one pipeline call takes on this worker (1: no batching)."""
    if configured is not None:
        return configured
    if device == "cpu":
        return 1
    try:
        import torch
    except ImportError:
        return 1
    return CUDA_BATCH_SIZE if torch.cuda.is_available() else 1
