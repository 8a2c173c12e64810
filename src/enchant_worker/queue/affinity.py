"""Warm-model affinity: what a worker has resident, and how long the fair lease may prefer it.

The keys are those the database computes for each generate_image job (migration 0092):
`affinity_model` ('' = the default model) and `affinity_loras` ('<model>|<lora>'). A worker advertises
the keys of jobs it can start without loading anything; the lease (lease_jobs_fair) prefers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_WINDOW = 64  # jobs per group looked at for a warm one; wider than the leases that run at once


@dataclass(frozen=True)
class Warm:
    """What one worker has resident now, as job keys."""

    models: frozenset[str] = frozenset()
    loras: frozenset[str] = frozenset()

    @classmethod
    def of(cls, models: Iterable[str] = (), loras: Iterable[str] = ()) -> Warm:
        return cls(frozenset(models), frozenset(loras))

    def __or__(self, other: Warm) -> Warm:
        return Warm(self.models | other.models, self.loras | other.loras)

    def describe(self) -> dict[str, list[str]]:
        return {"models": sorted(self.models), "loras": sorted(self.loras)}


@dataclass(frozen=True)
class Affinity:
    """max_wait_s: how long a job may be passed over for warm ones; older, it is taken in queue order
    (0 turns the preference off). window: how many of a group's oldest jobs are looked at per lease."""

    max_wait_s: float = 30.0
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if not self.max_wait_s >= 0:  # also refuses NaN
            raise ValueError(
                f"affinity max_wait_s must be 0 (off) or more seconds, not {self.max_wait_s}: it bounds how "
                "long a job may wait behind jobs whose model is already loaded"
            )
        if self.window < 1:
            raise ValueError(f"affinity window must be at least 1 job, not {self.window}")

    def params(self, warm: Warm | None, limit: int) -> dict[str, Any]:
        """The lease's parameters: no preference (and a window of `limit`) when nothing is warm."""
        prefer = warm is not None and bool(warm.models) and self.max_wait_s > 0
        return {
            "prefer": prefer,
            "window": max(self.window, limit) if prefer else limit,
            "warm_models": sorted(warm.models) if warm is not None and prefer else [],
            "warm_loras": sorted(warm.loras) if warm is not None and prefer else [],
            "affinity_wait_s": self.max_wait_s,
        }
