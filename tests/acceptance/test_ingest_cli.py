"""`enchant-worker ingest / extract / scenes` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "enchant_worker.cli"]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "the-lamp-at-marrow-point.md"


def cli(env, *args):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def test_ingest_extract_and_list_scenes(cli_env, conn):
    out = cli(cli_env, "ingest", str(SAMPLE), "--user", "me@example.org", "--extract", "--no-wait")
    assert out.returncode == 0, out.stderr
    assert "(created): 'The Lamp at Marrow Point', markdown, utf-8, 3 chapter(s)" in out.stderr
    assert len(out.stdout.split()) == 3  # one extract_scenes job id per chapter
    worker = cli(cli_env, "worker", "--burst", "--types", "extract_scenes")
    assert worker.returncode == 0, worker.stderr
    story = conn.execute("SELECT id FROM stories").fetchone()["id"]
    scenes = json.loads(cli(cli_env, "scenes", str(story), "--json").stdout)
    assert len(scenes) == 6 and scenes[0]["title"] == "Elena Marsh and Tobin at Marrow Point"
    again = cli(cli_env, "ingest", str(SAMPLE), "--user", "me@example.org")
    assert again.returncode == 0 and "(unchanged)" in again.stderr
    assert conn.execute("SELECT count(*) AS n FROM stories").fetchone()["n"] == 1


def test_bad_files_are_refused_with_the_reason(cli_env, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "cover.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    for path, message in (
        (empty, "is empty"),
        (binary, "looks binary"),
        (tmp_path / "none.txt", "no such file"),
    ):
        out = cli(cli_env, "ingest", str(path))
        assert out.returncode == 2 and message in out.stderr, out.stderr
    small = dict(cli_env, ENCHANT_INGEST_MAX_BYTES="1024")
    out = cli(small, "ingest", str(SAMPLE))
    assert out.returncode == 2 and "the ingest limit is 1,024 bytes (ENCHANT_INGEST_MAX_BYTES)" in out.stderr
    out = cli(cli_env, "ingest", str(SAMPLE), "--extract", "--analyzer", "gpt9")
    assert out.returncode == 2 and "unknown text analyzer; available: builtin, llm" in out.stderr
