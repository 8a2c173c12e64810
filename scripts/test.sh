#!/usr/bin/env bash
# Sets everything up and runs the checks: the lock matches pyproject.toml, formatting, lint, layer rules, types,
# then the test suite. Tests use ENCHANT_DATABASE_URL when set, otherwise the embedded Postgres (started
# under .enchant-test/).
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -x`. `--quick` first: leave out the ML
# tier (tiny models) and the slow tests, for a fast loop (`scripts/test.sh --quick -x`).
# The suite runs in ENCHANT_TEST_PROCESSES processes (default 2; each test file in one of them, and the ML
# tier in one, see tests/conftest.py): most of a test's time is spent waiting on servers, workers and
# subprocesses, so two take about half as long on two cores.
# `-n 0` among the arguments runs it in this one process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lock.sh --check
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
.venv/bin/ruff format --check src tests scripts
.venv/bin/ruff check src tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
if [ "${1:-}" = "--quick" ]; then
  shift
  set -- -m "not ml and not slow" "$@"
fi
.venv/bin/python -m pytest -n "${ENCHANT_TEST_PROCESSES:-2}" "$@"
