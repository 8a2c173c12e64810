"""`enchant-worker analyze / insights` as a user runs them, on the sample book through the queue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "enchant_worker.cli"]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "the-lamp-at-marrow-point.md"


def cli(env, *args):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def test_analyze_and_print_insights(cli_env, conn):
    assert (
        cli(cli_env, "ingest", str(SAMPLE), "--user", "me@example.org", "--extract", "--no-wait").returncode
        == 0
    )
    story = str(conn.execute("SELECT id FROM stories").fetchone()["id"])
    missing = cli(cli_env, "insights", story)
    assert missing.returncode == 2 and f"run `enchant-worker analyze {story}`" in missing.stderr
    worker = cli(cli_env, "--log-level", "WARNING", "worker", "--burst", "--types", "extract_scenes")
    assert worker.returncode == 0, worker.stderr
    queued = cli(cli_env, "analyze", story, "--no-wait")
    assert queued.returncode == 0 and "queued an analyze_story job" in queued.stderr, queued.stderr
    worker = cli(cli_env, "--log-level", "WARNING", "worker", "--burst", "--types", "analyze_story")
    assert worker.returncode == 0, worker.stderr
    out = cli(cli_env, "insights", story)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "The Lamp at Marrow Point: 3 chapter(s), 6 scene(s), 516 words" in text
    for field in (
        "overall",
        "narrative_coherence",
        "visual_potential",
        "character_development",
        "pacing",
        "emotional_impact",
    ):
        assert f"  {field}" in text
    assert "tension: " in text and "ch1.1 " in text
    assert "the builtin analyzer proposes no text edits" in text
    data = json.loads(cli(cli_env, "insights", story, "--json").stdout)
    assert data["stale"] is False and data["insights"]["counts"]["scenes"] == 6
    # unchanged: a second analysis reuses the first
    cli(cli_env, "analyze", story, "--no-wait")
    cli(cli_env, "--log-level", "WARNING", "worker", "--burst", "--types", "analyze_story")
    assert conn.execute("SELECT count(DISTINCT recorded_at) AS n FROM story_metrics").fetchone()["n"] == 1


def test_analyze_unknown_story_says_so(cli_env):
    out = cli(cli_env, "analyze", "00000000-0000-0000-0000-000000000009", "--no-wait")
    assert out.returncode == 2 and "no story has id" in out.stderr
