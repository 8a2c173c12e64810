"""How long an idle worker waits before it asks for work again, when no NOTIFY wakes it (behind a pooler
without a direct URL, or while the listener is down).

While work flows the worker asks again after `min_s`; every empty answer doubles the wait up to `max_s`.
Each wait is jittered (between three quarters and all of it), so that a fleet started together does not poll in
lock-step: N idle workers spread their polls evenly, and a new job waits about max_s / N for the first.
"""

from __future__ import annotations

import random


class AdaptivePoll:
    def __init__(self, min_s: float, max_s: float, *, rng: random.Random | None = None):
        self.min_s = min(min_s, max_s)
        self.max_s = max_s
        self._base = self.min_s
        self._rng = rng or random.Random()

    def found_work(self) -> None:
        self._base = self.min_s

    def next_wait(self) -> float:
        """The wait after an empty poll; the next one is twice as long, up to max_s."""
        wait = self._base * self._rng.uniform(0.75, 1.0)
        self._base = min(self._base * 2, self.max_s)
        return wait
