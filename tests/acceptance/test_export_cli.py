"""`enchant-worker export` and `import` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from enchant_worker.db.connection import Database
from tests.support.databases import another_database
from tests.support.stories import make_story


@pytest.fixture
def second_db(admin_url, template_db):
    yield from another_database(admin_url, template_db)


def cli(env, *args, check=True):
    run = subprocess.run(
        [sys.executable, "-m", "enchant_worker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_export_then_import_into_another_database(cli_env, db_url, second_db, tmp_path):
    storage = tmp_path / "home" / "storage"
    storage.mkdir(parents=True)
    with Database(db_url).connection() as conn:
        story = make_story(conn, storage, chapters=1, scenes_per_chapter=2)
    css = tmp_path / "style.css"
    css.write_text("body { color: #222 } @import url(https://evil.example/x.css);")
    out = tmp_path / "book.epub"
    run = cli(cli_env, "export", str(story.story_id), "--format", "epub", "--css", str(css), "-o", str(out))
    assert out.read_bytes()[:2] == b"PK" and "note: Custom styling: removed @import" in run.stderr
    backup = tmp_path / "backup.json"
    cli(cli_env, "export", str(story.story_id), "--format", "json", "-o", str(backup))
    other_env = {**cli_env, "ENCHANT_DATABASE_URL": second_db, "ENCHANT_HOME": str(tmp_path / "other")}
    imported = json.loads(cli(other_env, "import", str(backup)).stdout)
    assert imported["story_id"] == str(story.story_id) and imported["chapters"] == 1
    run = cli(other_env, "import", str(backup), check=False)
    assert run.returncode == 2 and "already exists" in run.stderr
    run = cli(cli_env, "export", str(story.story_id), "--format", "docx", check=False)
    assert run.returncode == 2 and "invalid choice: 'docx'" in run.stderr
