"""The schedule file: timings, defaults, and mistakes refused at start-up with the line named."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from enchant_worker.config import Settings
from enchant_worker.errors import ConfigurationError
from enchant_worker.scheduling.schedule import Cron, load_schedule, parse_every
from enchant_worker.scheduling.tasks import default_timings

from .conftest import CLI, cli

DEFAULTS = default_timings(Settings(reap_interval_s=10))


def _load(tmp_path, text: str):
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    return load_schedule(path, DEFAULTS)


def test_every_ticks_are_multiples_of_the_interval_since_the_epoch():
    every = parse_every("10s")
    now = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    assert every.latest(now) == datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert every.next_after(now) == datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert every.latest(datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)) == datetime(
        2026, 1, 1, 12, 0, 10, tzinfo=UTC
    )
    assert (
        parse_every("500ms").seconds == 0.5
        and parse_every("5m").seconds == 300
        and parse_every(2).seconds == 2
    )


def test_cron_latest_tick_includes_the_present_moment():
    cron = Cron("*/5 * * * *")
    assert cron.latest(datetime(2026, 1, 1, 0, 5, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert cron.latest(datetime(2026, 1, 1, 0, 7, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert cron.next_after(datetime(2026, 1, 1, 0, 5, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    paris = Cron("0 3 * * *", ZoneInfo("Europe/Paris"))
    assert paris.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def test_missing_file_gives_the_defaults_and_the_file_overrides_them(tmp_path):
    assert load_schedule(tmp_path / "none.toml", DEFAULTS).tasks == DEFAULTS
    config = _load(
        tmp_path,
        """
[tasks.reap_leases]
every = "2s"
[tasks.archive_jobs]
enabled = false
[jobs.nightly]
cron = "0 3 * * *"
job_type = "noop"
metadata = { seconds = 1 }
priority = 9
""",
    )
    assert config.tasks["reap_leases"].seconds == 2
    assert "archive_jobs" not in config.tasks
    assert str(config.tasks["record_metrics"]) == str(DEFAULTS["record_metrics"])
    (job,) = config.jobs
    assert (job.name, job.job_type, job.metadata, job.priority) == ("nightly", "noop", {"seconds": 1}, 9)


@pytest.mark.parametrize(
    "text, line, words",
    [
        (
            '[tasks.reap_leases]\nevery = "1s"\n\n[jobs.x]\njob_type = "noop"\ncron = "61 * * * *"\n',
            6,
            ["invalid cron expression '61 * * * *'"],
        ),
        (
            '[tasks.reap_leases]\nevery = "1s"\n[tasks.vacuum_everything]\nevery = "1h"\n',
            3,
            ["unknown maintenance task 'vacuum_everything'", "reap_leases"],
        ),
        ('[tasks.refresh_statistics]\ncron = "* * * *"\n', 2, ["5 fields"]),
        ('[tasks.refresh_statistics]\nevery = "fortnightly"\n', 2, ["invalid interval"]),
        ('[tasks.refresh_statistics]\ncron = "* * * * *"\nevery = "1s"\n', 3, ["either cron or every"]),
        ('[tasks.refresh_statistics]\ncrn = "* * * * *"\n', 2, ["unknown setting 'crn'"]),
        ('\n[jobs.digest]\ncron = "0 3 * * *"\n', 2, ["job_type"]),
        ('[jobs.digest]\njob_type = "noop"\n', 1, ["needs a cron expression"]),
        ('[jobs.digest]\nevery = "1h"\njob_type = "noop"\npriority = -1\n', 4, ["priority"]),
    ],
)
def test_mistakes_are_refused_with_the_line(tmp_path, text, line, words):
    with pytest.raises(ConfigurationError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert f"schedule.toml line {line}" in message, message
    for word in words:
        assert word in message


def test_scheduler_refuses_a_bad_schedule_at_start_up(tmp_path, cli_env):
    path = tmp_path / "schedule.toml"
    path.write_text('[tasks.reap_leases]\nevery = "1s"\n[tasks.frobnicate]\ncron = "0 * * * *"\n')
    result = cli("scheduler", "--schedule", str(path), env=cli_env, timeout=30)
    assert result.returncode == 2
    assert "line 3" in result.stderr and "unknown maintenance task 'frobnicate'" in result.stderr
    path.write_text('[jobs.nightly]\njob_type = "noop"\ncron = "0 25 * * *"\n')
    result = subprocess.run(
        [*CLI, "scheduler"],
        env={**cli_env, "ENCHANT_SCHEDULE_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "line 3" in result.stderr and "invalid cron expression '0 25 * * *'" in result.stderr
