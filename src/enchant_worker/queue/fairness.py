"""Fair share inside a priority level: the weights and caps the fair lease (lease_jobs_fair) applies.

Kept free of the tiers file (the queue does not read configuration): the worker builds one from
configs/tiers.toml with `FairShare.from_tiers`, tests and scripts from plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class _TierLike(Protocol):
    @property
    def fair_share_weight(self) -> int: ...
    @property
    def max_running_jobs(self) -> int | None: ...


@dataclass(frozen=True)
class FairShare:
    """Per subscription tier: its weight (share of the workers) and its cap on one user's jobs being
    processed at once (None: no cap). A tier missing here, and jobs with no user, weigh 1 with no cap;
    a user's own overrides (users.quota_overrides) win over the tier's."""

    weights: Mapping[str, int] = field(default_factory=dict)
    caps: Mapping[str, int | None] = field(default_factory=dict)
    # A group with nothing running whose oldest job has waited this long goes first in its priority.
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be 0 or more, not {self.max_wait_s}")
        for name, weight in self.weights.items():
            if weight < 1:
                raise ValueError(f"fair_share_weight of tier {name!r} must be at least 1, not {weight}")
        for name, cap in self.caps.items():
            if cap is not None and cap < 1:
                raise ValueError(f"max_running_jobs of tier {name!r} must be at least 1, not {cap}")

    @classmethod
    def from_tiers(cls, tiers: Mapping[str, _TierLike], max_wait_s: float = 60.0) -> FairShare:
        return cls(
            {n: t.fair_share_weight for n, t in tiers.items()},
            {n: t.max_running_jobs for n, t in tiers.items()},
            max_wait_s,
        )

    def params(self) -> dict[str, Any]:
        names = sorted(set(self.weights) | set(self.caps))
        return {
            "tier_names": names,
            "tier_weights": [self.weights.get(n, 1) for n in names],
            "tier_caps": [self.caps.get(n) for n in names],
            "max_wait_s": self.max_wait_s,
        }
