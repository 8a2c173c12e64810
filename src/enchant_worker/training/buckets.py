"""Aspect-ratio buckets and the order in which batches are drawn.

Each image goes to the bucket (width, height) whose aspect ratio is nearest its own, with an area of
about resolution²; a bucket larger than the image is shrunk to fit it, so nothing is upscaled (only
an image smaller than one `step` on a side is, to that one step). A batch holds images of one bucket.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

MAX_ASPECT_RATIO = 2.0  # widest bucket 2:1, tallest 1:2


def make_buckets(resolution: int, step: int, max_ratio: float = MAX_ASPECT_RATIO) -> list[tuple[int, int]]:
    """Bucket sizes (multiples of `step`) with area at most resolution² and aspect within max_ratio."""
    area = resolution * resolution
    buckets = set()
    for width in range(step, int(resolution * max_ratio) + 1, step):
        height = max(step, (area // width) // step * step)
        if 1 / max_ratio <= width / height <= max_ratio:
            buckets.add((width, height))
            buckets.add((height, width))
    return sorted(buckets)


def bucket_for(width: int, height: int, buckets: Sequence[tuple[int, int]], step: int) -> tuple[int, int]:
    """The bucket an image of `width`x`height` trains at: nearest aspect ratio, never bigger than the image."""
    ratio = math.log(width / height)
    bw, bh = min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))
    shrink = min(1.0, width / bw, height / bh)
    if shrink < 1.0:
        bw = max(step, int(bw * shrink) // step * step)
        bh = max(step, int(bh * shrink) // step * step)
    return bw, bh


def epoch_batches(
    buckets_of: Sequence[tuple[int, int]], batch_size: int, seed: int, epoch: int
) -> list[list[int]]:
    """The batches (lists of image indices) of one epoch: shuffled within buckets, then batch order shuffled.

    Depends only on its arguments, so an epoch's order is the same after a resume. The number of
    batches is the same every epoch.
    """
    rng = random.Random(f"enchant-lora-{seed}-{epoch}")
    groups: dict[tuple[int, int], list[int]] = {}
    for index, bucket in enumerate(buckets_of):
        groups.setdefault(bucket, []).append(index)
    batches: list[list[int]] = []
    for bucket in sorted(groups):
        members = groups[bucket]
        rng.shuffle(members)
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    rng.shuffle(batches)
    return batches
