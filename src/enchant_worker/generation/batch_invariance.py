"""Layers whose output for one image does not depend on the batch: the promise behind cross-job batching.

A job batched with others and the same job run alone differ only in the batch dimension, and torch's CPU
kernels choose their path by it:
- a linear layer of fewer than a dozen rows takes MKL's small-product path, which adds in another
  order. The UNet's time embedding has one row per image: two for one image alone (with guidance),
  twelve for six images together. Padded with zero rows to MIN_ROWS, every product takes the one path
  on which each row's sums are the same at any row count;
- a convolution runs torch's native kernel or oneDNN's by the batch size and the thread count
  (`ConvParams.use_mkldnn`: one image; a 1x1 kernel on one thread below 16 images). Here a 1x1 kernel
  is one matrix product per image, the same shape at any batch size, and every other goes to oneDNN,
  whose sums for an image do not depend on the batch.

The decoder is not covered: its group norms meet channels-last tensors, whose kernel sums by the batch
size, so `generate` decodes one image at a time on the CPU. `tests/ml/generation/test_batch_invariance.py`
checks these kernel properties on the machine that runs the tests. Generation uses this on the CPU only:
GPUs choose their kernels by shape too, and a compiled UNet would be traced through these functions;
nothing is claimed there.

    with batch_invariant():
        pipe(...)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

MIN_ROWS = 16

# The replacements keep torch's parameter names: a caller may pass any of them by keyword.
_real_linear = F.linear
_real_conv2d = F.conv2d
_lock = threading.Lock()
_users = 0  # calls inside batch_invariant, in every thread


def padded_linear(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """F.linear, with a product of fewer than MIN_ROWS rows padded to MIN_ROWS (the same values)."""
    rows = input.numel() // input.shape[-1] if input.shape[-1] else 0
    if rows == 0 or rows >= MIN_ROWS:
        return _real_linear(input, weight, bias)
    flat = F.pad(input.reshape(rows, input.shape[-1]), (0, 0, 0, MIN_ROWS - rows))
    return _real_linear(flat, weight, bias)[:rows].reshape(*input.shape[:-1], weight.shape[0])


def invariant_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """F.conv2d, on float32 images on the CPU by one path at every batch size: a 1x1 kernel as one
    product per image (of one shape whatever the batch; faster than oneDNN's on these sizes), the
    rest by oneDNN."""
    if (
        input.dim() != 4
        or input.device.type != "cpu"
        or input.dtype != torch.float32
        or isinstance(padding, str)
    ):
        return _real_conv2d(input, weight, bias, stride, padding, dilation, groups)
    if weight.shape[-2:] == (1, 1) and _pair(stride) == [1, 1] and _pair(padding) == [0, 0] and groups == 1:
        n, channels, height, width = input.shape
        per_image = weight.view(1, -1, channels).expand(n, -1, -1)
        flat = input.reshape(n, channels, height * width)
        out = (
            torch.bmm(per_image, flat)
            if bias is None
            else torch.baddbmm(bias.view(1, -1, 1), per_image, flat)
        )
        return out.view(n, -1, height, width)
    if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled:
        return torch.mkldnn_convolution(
            input.contiguous(), weight, bias, _pair(padding), _pair(stride), _pair(dilation), groups
        )
    return _real_conv2d(input, weight, bias, stride, padding, dilation, groups)


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, tuple | list) else [value, value]


@contextmanager
def batch_invariant() -> Iterator[None]:
    """Every nn.Linear and nn.Conv2d (LoRA layers included) computes through the functions above
    meanwhile. They replace F.linear and F.conv2d for the whole process, counted so that overlapping
    calls from several threads restore them once, after the last; another thread's layers get the same
    values through them."""
    global _users
    with _lock:
        _users += 1
        F.linear, F.conv2d = padded_linear, invariant_conv2d
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                F.linear, F.conv2d = _real_linear, _real_conv2d
