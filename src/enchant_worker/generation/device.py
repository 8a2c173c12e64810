"""Where and how a pipeline runs: CUDA in half precision with SDPA and channels_last when available,
else the CPU in float32. `ENCHANT_DEVICE=auto|cuda|cpu` picks; torch.compile is behind a flag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from enchant_worker.generation.errors import ConfigurationError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cuda", "cpu")
DTYPE_CHOICES = ("auto", "float16", "bfloat16", "float32")
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class DevicePolicy:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool = False
    compile: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> dict[str, str | bool]:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "cpu"
        return {
            "device": str(self.device),
            "name": name,
            "dtype": str(self.dtype).removeprefix("torch."),
            "channels_last": self.channels_last,
            "compile": self.compile,
        }


def resolve_device(requested: str = "auto", dtype: str = "auto", compile: bool = False) -> DevicePolicy:
    """The policy for `requested` (auto|cuda|cpu) and `dtype` (auto|float16|bfloat16|float32)."""
    if requested not in DEVICE_CHOICES:
        raise ConfigurationError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {requested!r}")
    if dtype not in DTYPE_CHOICES:
        raise ConfigurationError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, not {dtype!r}")
    cuda = torch.cuda.is_available()
    if requested == "cuda" and not cuda:
        raise ConfigurationError("device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if requested == "cpu" or not cuda:
        if dtype not in ("auto", "float32"):
            raise ConfigurationError(f"dtype {dtype!r} is not supported on the CPU; use 'float32'")
        return DevicePolicy(torch.device("cpu"), torch.float32, channels_last=False, compile=compile)
    # fp16 is the reference precision of SD 1.5 / SDXL weights; bf16 on request (avoids fp16 overflow).
    chosen = torch.float16 if dtype == "auto" else _DTYPES[dtype]
    return DevicePolicy(torch.device("cuda"), chosen, channels_last=True, compile=compile)


def apply_policy(pipe, policy: DevicePolicy):
    """Move `pipe` to the policy's device and dtype and apply its speed settings; return `pipe`."""
    pipe.to(policy.device)
    if pipe.unet.dtype != policy.dtype:
        pipe.to(dtype=policy.dtype)
    if policy.is_cuda:
        from diffusers.models.attention_processor import AttnProcessor2_0

        pipe.unet.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA (flash / memory-efficient)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if policy.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if policy.compile:
        # The UNet is where the time goes. Compiled in place (the module keeps its type, so LoRA loading
        # still finds it); no CUDA graphs, so switching adapters does not invalidate captured graphs.
        pipe.unet.compile(mode="max-autotune-no-cudagraphs")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def free_memory(*, host: bool = False) -> None:
    """Give cached GPU memory back after an OOM or a cancelled job. host=True (a model unloaded): on the
    CPU too, where a collection returns the RAM that reference cycles still hold. Otherwise the CPU is
    spared the collection, which takes seconds in a large process (measured: 6 s a call in the test
    suite's); the interpreter's own collections free the same RAM soon after."""
    import gc

    cuda = torch.cuda.is_available()
    if cuda or host:
        gc.collect()
    if cuda:
        torch.cuda.empty_cache()
