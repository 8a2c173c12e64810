"""Helpers of the operations tests: settings with short intervals, CLI subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from enchant_worker.config import Settings

CLI = [sys.executable, "-m", "enchant_worker.cli"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings of tests/conftest.py, with the scheduler and caches quick to react."""
    return settings.model_copy(
        update={
            "leader_check_s": 0.2,
            "partitions_ahead": 3,
            "data_migration_batch_size": 500,
            "cache_retry_redis_s": 0.5,
        }
    )


@pytest.fixture
def ops_env(cli_env) -> dict[str, str]:
    env = dict(cli_env)
    env.update(
        ENCHANT_LEADER_CHECK_S="0.2",
        ENCHANT_LEASE_SECONDS="2",
        ENCHANT_HEARTBEAT_SECONDS="0.3",
        ENCHANT_POLL_INTERVAL_S="0.2",
        ENCHANT_SHUTDOWN_GRACE_S="1",
        ENCHANT_DATA_MIGRATION_MODULES="tests.integration.operations.sample_migrations",
    )
    return env


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def spawn(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A CLI process writing its output to `log` (a file, so a full pipe never blocks it)."""
    handle = log.open("w")
    return subprocess.Popen([*CLI, *args], env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout_s: float = 15) -> int:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
