#!/usr/bin/env bash
# The whole chain on the embedded defaults: a private Postgres, the tiny Stable Diffusion built locally,
# a short sample book (samples/the-lamp-at-marrow-point.md: three chapters, characters with aliases,
# scene breaks, an emotional turn) ingested, split into scenes by the builtin analyzer, illustrated by a
# worker through the queue, then analysed (analyze_story). Prints the scenes found, where the images are and
# the analysis. Set ENCHANT_DATABASE_URL to use your own Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error DIFFUSERS_VERBOSITY=error
ew=.venv/bin/enchant-worker

echo "== database: $($ew db url)"
$ew migrate
echo "== a worker starts in the background (extract_scenes, generate_image)"
$ew --log-level WARNING worker --types extract_scenes,generate_image,analyze_story &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
echo "== the sample book is ingested, its chapters split into scenes, each new scene illustrated"
$ew ingest samples/the-lamp-at-marrow-point.md --illustrate --wait --timeout 600
echo "== the story analysed: quality scores, pacing curve, enhancement rules, suggestions"
story=$($ew ingest samples/the-lamp-at-marrow-point.md --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["story_id"])')
$ew analyze "$story" --wait --timeout 120
echo "== the queue"
$ew jobs --limit 5
