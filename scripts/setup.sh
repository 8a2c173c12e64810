#!/usr/bin/env bash
# Creates .venv and installs the project with its dev tools at the exact versions of requirements.lock
# (hashes checked). Safe to run again: it does nothing when neither pyproject.toml nor the lock changed
# since the last install.
#
# torch is not in the lock: when the venv has none, the CPU build pinned in the lock's header is
# installed first (what the demo and tests need). GPU users install their CUDA build into .venv first
# (see README) and it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${ENCHANT_TORCH_SPEC:-$(sed -n 's/^# torch: //p' requirements.lock)}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.enchant-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing $TORCH_SPEC" >&2
  .venv/bin/python -m pip install -q "$TORCH_SPEC"
fi
.venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .
echo "$want" > "$stamp"
