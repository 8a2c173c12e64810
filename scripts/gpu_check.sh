#!/usr/bin/env bash
# The GPU check (see shared/GPU.md): on a machine with one NVIDIA GPU, torch (CUDA), transformers, peft,
# accelerate, safetensors, numpy, pillow and pytest installed but not diffusers, and no network.
# Installs the wheels carried in .whl/ into /tmp/site, runs the GPU-marked tests and the benchmarks, and
# writes the figures to $OUT (default ./gpu-results). Each step runs even if an earlier one failed.
#
# Prepare the wheels here first (pure-Python packages the GPU machine lacks):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 pydantic pydantic-core pydantic-settings \
#     typing-inspection annotated-types
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-results}
mkdir -p "$OUT"
export PYTHONPATH="/tmp/site:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0

step() {  # step NAME COMMAND...: runs, logs to $OUT/NAME.log, remembers a failure
  local name=$1; shift
  echo "== $name" | tee -a "$OUT/summary.txt"
  if ! "$@" > "$OUT/$name.log" 2>&1; then
    echo "   FAILED (see $name.log)" | tee -a "$OUT/summary.txt"; status=1
  fi
  tail -n 25 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-deps --no-index --target /tmp/site .whl/*.whl
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" >> "$OUT/gpu.txt" 2>&1

step gpu_tests python3 -m pytest tests/gpu -m gpu -q -p no:cacheprovider -o addopts="" --timeout=600
step generate_sd15_eager python3 scripts/bench_generate.py --sd15 --device cuda --batch 1 4 --repeats 3 --json "$OUT/generate_eager.json"
step generate_sd15_compiled python3 scripts/bench_generate.py --sd15 --device cuda --batch 1 4 --repeats 3 --compile --json "$OUT/generate_compiled.json"
step train_sd15 python3 scripts/bench_train.py --sd15 --device cuda --mixed-precision bf16 --json "$OUT/train.json"
exit $status
