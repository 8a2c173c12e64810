"""When to try a failed job again: exponential backoff with full jitter."""

from __future__ import annotations

import random


def retry_delay_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before the next try after `attempt` (1-based) failed: uniform in [cap/2, cap] where
    cap = min(max_s, base_s * 2**(attempt-1)). Half-jitter keeps the growth visible while spreading a
    burst of failures over time."""
    cap = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(cap / 2, cap)
