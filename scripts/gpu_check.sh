#!/usr/bin/env bash
# The GPU check (see shared/GPU.md): on a machine with one NVIDIA GPU, torch (CUDA), transformers, peft,
# accelerate, safetensors, numpy, pillow, pytest and pytest-timeout installed but not diffusers, and no
# network. Installs the wheels carried in .whl/ (or $ENCHANT_WHEELS) into /tmp/site, runs the GPU-marked
# tests and the benchmarks, and writes to $OUT (default ./gpu-results): summary.txt (the machine, the
# versions, each step's time and tail), one log per step, and results.json (every step's figures). Each
# step runs under a time limit, and even if an earlier one failed; the whole check is sized to finish in
# about 6 minutes on an H100/H200 ($ENCHANT_GPU_CHECK_BUDGET_S, default 380, bounds the last step).
#
# Prepare the wheels here first (the packages the GPU machine lacks: diffusers, and pydantic for the
# training spec; one version of each, those of .venv):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl diffusers==0.42.1 pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 \
#     typing-inspection==0.4.5 annotated-types==0.8.0 typing-extensions==4.16.0
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-results}
WHEELS=${ENCHANT_WHEELS:-.whl}
SITE=${ENCHANT_SITE:-/tmp/site}
BUDGET=${ENCHANT_GPU_CHECK_BUDGET_S:-380}
PY=${PYTHON:-python3}
JSON=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH="$SITE:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
status=0

step() {  # step NAME LIMIT_S COMMAND...: runs under a time limit, logs to $OUT/NAME.log, remembers a failure
  local name=$1 limit=$2 t0=$SECONDS rc=0
  shift 2
  echo "== $name (limit ${limit} s)" | tee -a "$OUT/summary.txt"
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    status=1
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "   TIMED OUT after ${limit} s (see $name.log)" | tee -a "$OUT/summary.txt"
    else
      echo "   FAILED, exit $rc (see $name.log)" | tee -a "$OUT/summary.txt"
    fi
  fi
  echo "   $((SECONDS - t0)) s; $SECONDS s since the start" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}

collect() {  # every step's JSON into $OUT/results.json (also what a step cut short had written)
  "$PY" - "$JSON" "$OUT/results.json" <<'EOF'
import json, pathlib, sys
folder, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
results = {}
for path in sorted(folder.glob("*.json")):
    try:
        results[path.stem] = json.loads(path.read_text())
    except ValueError as exc:
        results[path.stem] = {"unreadable": str(exc)}
out.write_text(json.dumps(results, indent=2))
EOF
}

if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-deps --no-index --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$WHEELS"/*.whl 2>&1 | tail -n 5 || status=1
fi
{
  echo "== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" - <<'EOF' 2>&1
import importlib.metadata as md, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(),
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
for name in ("diffusers", "transformers", "peft", "accelerate", "safetensors", "pydantic", "numpy", "triton"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} missing")
EOF
} | tee -a "$OUT/summary.txt"

# The GPU tests: --noconftest, because tests/conftest.py sets up Postgres (psycopg), which is not there.
step gpu_tests 90 "$PY" -m pytest tests/gpu -m gpu -q -ra -p no:cacheprovider --noconftest -o addopts="" \
  --timeout=80
step generate_eager 100 "$PY" scripts/bench_generate.py --sd15 --device cuda --batch 1 4 --repeats 3 \
  --json "$JSON/generate_eager.json"
# Cross-job batching: 1, 4 and 8 jobs alone vs in one call (SD 1.5 architecture, 512 px).
step batch 100 "$PY" scripts/bench_batch.py --sd15 --device cuda --size 512 --steps 25 --batch 1 4 8 --rounds 1 \
  --json "$JSON/batch.json"
step train 110 "$PY" scripts/bench_train.py --sd15 --device cuda --mixed-precision bf16 --steps 40 --warmup 5 \
  --json "$JSON/train.json"
collect
# torch.compile last, with what time is left: the worker's own mode (max-autotune-no-cudagraphs) tunes
# every kernel for many minutes on the SD 1.5 UNet, so the check compiles in the default mode.
left=$((BUDGET - SECONDS))
step generate_compiled $((left > 60 ? left : 60)) "$PY" scripts/bench_generate.py --sd15 --device cuda \
  --batch 1 4 --repeats 3 --compile --compile-mode default --json "$JSON/generate_compiled.json"
collect
echo "== done in $SECONDS s, status $status" | tee -a "$OUT/summary.txt"
exit $status
