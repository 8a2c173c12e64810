#!/usr/bin/env bash
# requirements.lock: every package of `.[dev]` at an exact version with its hashes, for any platform,
# resolved by uv against the torch pin but without torch and its CUDA-only packages: each machine brings
# its torch (scripts/setup.sh installs the CPU build, GPU users their CUDA one), then the lock with
# --no-deps --require-hashes.
#   scripts/lock.sh            refresh the lock after editing pyproject.toml's dependencies
#   scripts/lock.sh --check    fail when pyproject.toml's dependencies changed since the last refresh
# The torch pin lives in the lock's header; `ENCHANT_TORCH_SPEC=torch==X scripts/lock.sh` changes it.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements.lock

# What the lock was compiled from: the dependency lists, the Python floor and the torch pin.
inputs_hash() {
  "${PYTHON:-python3}" - "$1" <<'EOF'
import hashlib, json, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
inputs = [project["dependencies"], project.get("optional-dependencies", {}), project["requires-python"], sys.argv[1]]
print(hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest())
EOF
}
header() { if [ -f "$lock" ]; then sed -n "s/^# $1: //p" "$lock"; fi; }

if [ "${1:-}" = "--check" ]; then
  if [ "$(header inputs-sha256)" != "$(inputs_hash "$(header torch)")" ]; then
    echo "$lock does not match pyproject.toml's dependencies: run scripts/lock.sh and commit both" >&2
    exit 1
  fi
  exit 0
fi

torch=${ENCHANT_TORCH_SPEC:-$(header torch)}
torch=${torch:-torch==2.13.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$torch" > "$tmp/torch.txt"
# torch's CUDA-only dependencies (linux wheels on PyPI): never locked, the CUDA build brings its own.
printf '%s\n' triton cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
  nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand \
  nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink \
  nvidia-nvshmem-cu13 nvidia-nvtx > "$tmp/cuda.txt"
.venv/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
  --constraints "$tmp/torch.txt" --excludes "$tmp/cuda.txt" --no-emit-package torch \
  --custom-compile-command scripts/lock.sh --quiet -o "$tmp/lock"
if grep -E '^(nvidia-|triton|cuda-)' "$tmp/lock"; then
  echo "$torch brings CUDA packages not excluded above: add them to scripts/lock.sh" >&2
  exit 1
fi
{
  echo "# Refresh with scripts/lock.sh (see there); scripts/test.sh checks that it matches pyproject.toml."
  echo "# torch: $torch"
  echo "# inputs-sha256: $(inputs_hash "$torch")"
  cat "$tmp/lock"
} > "$lock"
echo "wrote $lock ($(grep -c '^[a-z]' "$lock") packages, $torch installed apart)"
