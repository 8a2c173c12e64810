"""When things run: `every` intervals and cron expressions, and the schedule file that names them.

configs/schedule.toml (ENCHANT_SCHEDULE_FILE):

    [tasks.refresh_statistics]      # a maintenance task (see `enchant-worker maintenance list`)
    cron = "*/5 * * * *"            # 5-field cron, read in ENCHANT_SCHEDULE_TIMEZONE (UTC)
    [tasks.reap_leases]
    every = "10s"                   # or an interval: 500ms, 10s, 5m, 1h, or a number of seconds
    [tasks.archive_jobs]
    enabled = false                 # tasks not named keep their default schedule

    [jobs.nightly_digest]           # a recurring job, enqueued once per tick
    cron = "0 3 * * *"
    job_type = "export_story"
    metadata = { story_id = "..." }
    priority = 5                    # optional, as is max_attempts

Every tick has an identity shared by all schedulers (cron times; multiples of the interval since the Unix
epoch), so "run this tick" means the same thing on every host. Mistakes are refused at start-up with
the file and line named.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from enchant_worker.errors import ConfigurationError

MIN_INTERVAL_S = 0.1
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
TASK_KEYS = {"cron", "every", "enabled"}
JOB_KEYS = {"cron", "every", "enabled", "job_type", "metadata", "priority", "max_attempts"}


class Every:
    """Ticks at multiples of `seconds` since the Unix epoch."""

    def __init__(self, seconds: float):
        if not seconds >= MIN_INTERVAL_S:
            raise ValueError(f"an interval must be at least {MIN_INTERVAL_S}s, got {seconds}s")
        self.seconds = seconds

    def latest(self, now: datetime) -> datetime:
        """The latest tick at or before `now`."""
        n = math.floor(now.timestamp() / self.seconds + 1e-9)
        return datetime.fromtimestamp(n * self.seconds, UTC)

    def next_after(self, moment: datetime) -> datetime:
        return datetime.fromtimestamp(
            (math.floor(moment.timestamp() / self.seconds + 1e-9) + 1) * self.seconds, UTC
        )

    def __str__(self) -> str:
        return f"every {self.seconds:g}s"


class Cron:
    """Ticks at the times of a 5-field cron expression, in a time zone."""

    def __init__(self, expression: str, tz: ZoneInfo | None = None):
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}"
            )
        try:
            croniter(expression)
        except (ValueError, KeyError) as exc:  # CroniterBadCronError is a ValueError
            raise ValueError(str(exc)) from None
        self.expression = expression
        self.tz = tz or ZoneInfo("UTC")

    def latest(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        prev = croniter(self.expression, local).get_prev(datetime)
        nxt = croniter(self.expression, prev).get_next(datetime)
        return (nxt if nxt <= local else prev).astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.expression, moment.astimezone(self.tz)).get_next(datetime).astimezone(UTC)

    def __str__(self) -> str:
        return f"cron {self.expression!r}"


Timing = Every | Cron


def parse_every(value: Any) -> Every:
    if isinstance(value, bool):
        raise ValueError(f"not an interval: {value!r}")
    if isinstance(value, int | float):
        return Every(float(value))
    match = _EVERY.match(str(value))
    if not match:
        raise ValueError(f"not an interval: {value!r} (write e.g. 500ms, 10s, 5m, 1h or a number of seconds)")
    return Every(float(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass(frozen=True)
class RecurringJob:
    name: str
    timing: Timing
    job_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    priority: int = 5
    max_attempts: int = 3


@dataclass(frozen=True)
class ScheduleConfig:
    tasks: dict[str, Timing]  # every enabled maintenance task and when it runs
    jobs: list[RecurringJob]
    source: Path | None = None
    options: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # a task's own settings, defaults filled


def load_schedule(
    path: Path | None,
    defaults: dict[str, Timing],
    *,
    timezone: str = "UTC",
    task_options: dict[str, dict[str, float]] | None = None,
) -> ScheduleConfig:
    """The default task timings overridden by the file (when it exists); refuses mistakes by line.
    `task_options` names the settings a task takes besides its timing (positive numbers, e.g.
    `retention_days`) with their defaults."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"ENCHANT_SCHEDULE_TIMEZONE: unknown time zone {timezone!r}") from None
    if path is None or not path.exists():
        return ScheduleConfig(dict(defaults), [], None, {k: dict(v) for k, v in (task_options or {}).items()})
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    return parse_schedule(data, text, defaults, tz=tz, source=path, task_options=task_options)


def parse_schedule(
    data: dict[str, Any],
    text: str,
    defaults: dict[str, Timing],
    *,
    tz: ZoneInfo,
    source: Path | None = None,
    task_options: dict[str, dict[str, float]] | None = None,
) -> ScheduleConfig:
    where = _Locator(text, source)
    options = {k: dict(v) for k, v in (task_options or {}).items()}
    unknown_sections = set(data) - {"tasks", "jobs"}
    if unknown_sections:
        name = sorted(unknown_sections)[0]
        raise where.error(name, None, f"unknown section [{name}]; the file has [tasks.NAME] and [jobs.NAME]")
    tasks = dict(defaults)
    for name, entry in _tables(data, "tasks", where).items():
        section = f"tasks.{name}"
        if name not in defaults:
            raise where.error(
                section, None, f"unknown maintenance task {name!r}; known: {', '.join(sorted(defaults))}"
            )
        own = options.get(name, {})
        _check_keys(entry, TASK_KEYS | set(own), section, where)
        for key in set(entry) & set(own):
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise where.error(section, key, f"{key}: must be a positive number, got {value!r}")
            own[key] = float(value)
        if entry.get("enabled", True) is False:
            tasks.pop(name)
            continue
        timing = _timing(entry, section, where, tz, required=False)
        if timing is not None:
            tasks[name] = timing
    jobs = []
    for name, entry in _tables(data, "jobs", where).items():
        section = f"jobs.{name}"
        _check_keys(entry, JOB_KEYS, section, where)
        timing = _timing(entry, section, where, tz, required=True)
        assert timing is not None  # required: _timing raised instead
        job_type = entry.get("job_type")
        if not isinstance(job_type, str) or not job_type:
            raise where.error(
                section, "job_type", 'job_type: the job type to enqueue is required (e.g. "noop")'
            )
        metadata = entry.get("metadata", {})
        if not isinstance(metadata, dict):
            raise where.error(section, "metadata", "metadata: must be a table (the job's input)")
        priority, attempts = entry.get("priority", 5), entry.get("max_attempts", 3)
        if not isinstance(priority, int) or not 0 <= priority <= 32767:
            raise where.error(
                section, "priority", f"priority: must be an integer from 0 to 32767, got {priority!r}"
            )
        if not isinstance(attempts, int) or attempts < 1:
            raise where.error(section, "max_attempts", f"max_attempts: must be at least 1, got {attempts!r}")
        if entry.get("enabled", True) is not False:
            jobs.append(RecurringJob(name, timing, job_type, metadata, priority, attempts))
    return ScheduleConfig(tasks, jobs, source, options)


def _tables(data: dict[str, Any], section: str, where: _Locator) -> dict[str, dict[str, Any]]:
    tables = data.get(section, {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise where.error(section, None, f"[{section}] holds one table per name, e.g. [{section}.NAME]")
    return tables


def _check_keys(entry: dict[str, Any], allowed: set[str], section: str, where: _Locator) -> None:
    for key in entry:
        if key not in allowed:
            raise where.error(
                section, key, f"unknown setting {key!r} (allowed: {', '.join(sorted(allowed))})"
            )
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        raise where.error(section, "enabled", "enabled: must be true or false")


def _timing(
    entry: dict[str, Any], section: str, where: _Locator, tz: ZoneInfo, *, required: bool
) -> Timing | None:
    if "cron" in entry and "every" in entry:
        raise where.error(section, "every", "give either cron or every, not both")
    if "cron" in entry:
        expression = entry["cron"]
        try:
            if not isinstance(expression, str):
                raise ValueError('must be a string such as "*/5 * * * *"')
            return Cron(expression, tz)
        except ValueError as exc:
            raise where.error(section, "cron", f"invalid cron expression {expression!r}: {exc}") from None
    if "every" in entry:
        try:
            return parse_every(entry["every"])
        except ValueError as exc:
            raise where.error(section, "every", f"invalid interval: {exc}") from None
    if required:
        raise where.error(
            section, None, 'needs a cron expression (cron = "0 3 * * *") or an interval (every = "1h")'
        )
    return None


class _Locator:
    """Finds the line of a table or of one of its keys in the TOML text (tomllib keeps no positions)."""

    def __init__(self, text: str, source: Path | None):
        self.lines = text.splitlines()
        self.source = source

    def line(self, section: str, key: str | None) -> int | None:
        header = re.compile(
            r"^\s*\[\s*" + r"\s*\.\s*".join(_key_pattern(p) for p in section.split(".", 1)) + r"\s*\]"
        )
        start = next((i for i, line in enumerate(self.lines) if header.match(line)), None)
        if start is None:
            return None
        if key is None:
            return start + 1
        key_line = re.compile(r"^\s*" + _key_pattern(key) + r"\s*=")
        for i in range(start + 1, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[i]):
                break
            if key_line.match(self.lines[i]):
                return i + 1
        return start + 1

    def error(self, section: str, key: str | None, message: str) -> ConfigurationError:
        line = self.line(section, key)
        where = str(self.source) if self.source else "schedule"
        return ConfigurationError(f"{where}{f' line {line}' if line else ''} [{section}]: {message}")


def _key_pattern(key: str) -> str:
    escaped = re.escape(key)
    return rf"(?:{escaped}|\"{escaped}\"|'{escaped}')"
