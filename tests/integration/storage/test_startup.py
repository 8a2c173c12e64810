"""A worker or API with a bad ENCHANT_STORAGE_URL or without S3 credentials stops at start-up with
one line naming what to fix (exit status 2), not at the first job or request."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.object_storage import ISOLATED_ENV

pytestmark = pytest.mark.timeout(120)


def start(cli_env, command: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in cli_env.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "enchant_worker.cli", *command.split()],
        capture_output=True,
        text=True,
        timeout=90,
        env={**clean, **ISOLATED_ENV, **env},
    )


@pytest.mark.parametrize("command", ["worker --burst", "api --port 1"])
def test_a_bad_storage_url_stops_start_up_naming_the_variable(cli_env, command):
    run = start(cli_env, command, ENCHANT_STORAGE_URL="s3:/bucket-without-slashes")
    assert run.returncode == 2, run.stderr
    assert "ENCHANT_STORAGE_URL='s3:/bucket-without-slashes'" in run.stderr
    assert "s3://bucket/prefix" in run.stderr


@pytest.mark.parametrize("command", ["worker --burst", "api --port 1"])
def test_missing_s3_credentials_stop_start_up(cli_env, command):
    run = start(cli_env, command, ENCHANT_STORAGE_URL="s3://enchant-test/prefix")
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "error: ENCHANT_STORAGE_URL is s3://enchant-test/prefix but no S3 credentials were found: set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
