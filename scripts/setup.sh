#!/usr/bin/env bash
# Creates .venv and installs the project with its dev tools. Safe to run again: it does nothing when
# pyproject.toml has not changed since the last install.
#
# torch: when the venv has none, the pinned CPU build is installed first (what the demo and tests
# need). GPU users install their CUDA build into .venv first (see README) and it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${ENCHANT_TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.enchant-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing $TORCH_SPEC" >&2
  .venv/bin/python -m pip install -q "$TORCH_SPEC"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"
