"""Subscription tiers (`configs/tiers.toml`): caps and daily quotas for what a user's key may enqueue."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from enchant_worker.errors import ConfigurationError

TIERS = ("free", "pro", "enterprise")  # users.subscription_tier's check constraint
QUOTA_KEYS = ("max_active_jobs", "images_per_day", "trainings_per_day")


@dataclass(frozen=True)
class Tier:
    name: str
    priority_floor: int = 5
    max_attempts: int = 3
    max_run_s: int = 900
    max_active_jobs: int = 20  # 0: no limit, as for the two below
    images_per_day: int = 200
    images_per_job: int = 8  # one request's images (A1111's batch_size × n_iter, OpenAI's n, count)
    trainings_per_day: int = 2
    fair_share_weight: int = 1

    def limits(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def with_overrides(self, overrides: dict[str, Any] | None) -> Tier:
        """The tier with a user's own exceptions (users.quota_overrides) applied."""
        known = {f.name for f in fields(self)} - {"name"}
        return replace(self, **{k: int(v) for k, v in (overrides or {}).items() if k in known})


def check_overrides(overrides: dict[str, Any]) -> dict[str, int]:
    """Per-user overrides as stored: known keys, non-negative integers; ValueError naming the key."""
    known = [f.name for f in fields(Tier) if f.name != "name"]
    checked = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{key}: unknown setting; known: {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
            raise ValueError(f"{key}: must be a whole number from 0 to {2**31 - 1}, not {value!r}")
        checked[key] = value
    return checked


@cache
def load_tiers(path: Path) -> dict[str, Tier]:
    """The tiers of `path`; tiers it does not define keep the defaults. Mistakes name the key."""
    tiers = {name: Tier(name) for name in TIERS}
    if not path.is_file():
        return tiers
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    for name, values in (data.get("tiers") or {}).items():
        if name not in TIERS:
            raise ConfigurationError(f"{path}: [tiers.{name}]: unknown tier; tiers are {', '.join(TIERS)}")
        try:
            tiers[name] = Tier(name, **check_overrides(values))
        except ValueError as exc:
            raise ConfigurationError(f"{path}: [tiers.{name}] {exc}") from None
    return tiers
