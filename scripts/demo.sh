#!/usr/bin/env bash
# The main job on the embedded defaults: a private Postgres, the tiny Stable Diffusion built locally,
# a small sample story (two scenes, characters with emotions, a LoRA style) illustrated by a worker
# through the queue. Prints where the images are. Set ENCHANT_DATABASE_URL to use your own Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error DIFFUSERS_VERBOSITY=error
ew=.venv/bin/enchant-worker

echo "== database: $($ew db url)"
$ew migrate
echo "== a worker starts in the background (generate_image)"
$ew --log-level WARNING worker --types generate_image &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
echo "== the sample story is added and its scenes queued; the worker illustrates them"
$ew sample-story --wait --timeout 600
echo "== the queue"
$ew jobs --limit 5
