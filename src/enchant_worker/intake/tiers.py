"""Subscription tiers (`configs/tiers.toml`): caps and daily quotas for what a user's key may enqueue."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from enchant_worker.errors import ConfigurationError

TIERS = ("free", "pro", "enterprise")  # users.subscription_tier's check constraint
QUOTA_KEYS = ("max_active_jobs", "images_per_day", "trainings_per_day")
# Settings of the fair-share lease where 0 has no "no limit" meaning: a weight of 0 would never run the
# user's jobs and a cap of 0 would hold them forever, so both are refused (leave the cap out for none).
AT_LEAST_ONE = ("fair_share_weight", "max_running_jobs")


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
    fair_share_weight: int = 1  # share of the workers when users of one priority compete (at least 1)
    max_running_jobs: int | None = None  # jobs of one user processed at once (None: no cap; at least 1)
    events_per_minute: int = 600  # analytics events (POST /v1/events) over a sliding minute; 0: no limit

    def limits(self) -> dict[str, int]:
        """The tier's limits, those it does not set left out."""
        return {
            f.name: v for f in fields(self) if f.name != "name" and (v := getattr(self, f.name)) is not None
        }

    def with_overrides(self, overrides: dict[str, Any] | None) -> Tier:
        """The tier with a user's own exceptions (users.quota_overrides) applied."""
        known = {f.name for f in fields(self)} - {"name"}
        changes: dict[str, Any] = {k: int(v) for k, v in (overrides or {}).items() if k in known}
        return replace(self, **changes)


def check_overrides(overrides: dict[str, Any]) -> dict[str, int]:
    """Per-user overrides as stored: known keys, non-negative integers; ValueError naming the key."""
    known = [f.name for f in fields(Tier) if f.name != "name"]
    checked = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{key}: unknown setting; known: {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
            raise ValueError(f"{key}: must be a whole number from 0 to {2**31 - 1}, not {value!r}")
        if key in AT_LEAST_ONE and value < 1:
            hint = (
                "the user's jobs would never run"
                if key == "fair_share_weight"
                else "the user's jobs would wait forever; leave the setting out for no cap"
            )
            raise ValueError(f"{key}: must be at least 1, not {value} ({hint})")
        checked[key] = value
    return checked


@cache
def load_tiers(path: Path) -> dict[str, Tier]:
    """The tiers of `path`; tiers it does not define keep the defaults. Mistakes name the line and key."""
    tiers = {name: Tier(name) for name in TIERS}
    if not path.is_file():
        return tiers
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    for name, values in (data.get("tiers") or {}).items():
        if name not in TIERS:
            raise ConfigurationError(
                f"{path}:{_line_of(text, name)}: [tiers.{name}]: unknown tier; "
                f"tiers are {', '.join(TIERS)} (users.subscription_tier)"
            )
        if not isinstance(values, dict):
            raise ConfigurationError(f"{path}: tiers.{name}: must be a table ([tiers.{name}])")
        try:
            tiers[name] = Tier(name, **check_overrides(values))
        except ValueError as exc:
            key = str(exc).split(":", 1)[0]
            raise ConfigurationError(f"{path}:{_line_of(text, name, key)}: [tiers.{name}] {exc}") from None
    return tiers


def _line_of(text: str, tier: str, key: str | None = None) -> int | str:
    """The line (1-based) of `[tiers.<tier>]`, or of `key = ...` inside that table ('?' if not found):
    tomllib gives values, not where they were written."""
    header = re.compile(rf"^\s*\[\s*tiers\s*\.\s*\"?{re.escape(tier)}\"?\s*\]")
    setting = re.compile(rf"^\s*{re.escape(key)}\s*=") if key else None
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("["):
            inside = bool(header.match(line))
            if inside and setting is None:
                return number
        elif inside and setting is not None and setting.match(line):
            return number
    return "?"
