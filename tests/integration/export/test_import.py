"""JSON export → `import` into another instance → JSON export again: the same bytes."""

from __future__ import annotations

import json

import pytest

from enchant_worker.db.connection import Database
from enchant_worker.export.importer import ImportFailed, import_story, read_export
from enchant_worker.export.run import ExportOptions, export_story


def test_the_round_trip_through_another_instance_is_exact(conn, storage, story, export, second_db, tmp_path):
    _, first = export(story.story_id, "json")
    data = read_export(first)
    other_storage = tmp_path / "other-storage"
    with Database(second_db).connection() as other:
        assert import_story(other, data, other_storage) == story.story_id
        again = export_story(other, story.story_id, ExportOptions("json"), other_storage)
        owner = other.execute(
            "SELECT u.email FROM stories s JOIN users u ON u.id = s.user_id WHERE s.id = %s",
            (story.story_id,),
        ).fetchone()["email"]
        with pytest.raises(ImportFailed, match="already exists in this database"):
            import_story(other, data, other_storage)
    assert (other_storage / again.file).read_bytes() == first.read_bytes()
    assert owner == data["story"]["author"]["email"]
    # The images came along as files, content-addressed.
    assert len(list((other_storage / "images").rglob("*.png"))) == 6


def test_an_export_of_another_format_version_is_refused_with_what_to_do(tmp_path, story, export):
    _, path = export(story.story_id, "json")
    data = json.loads(path.read_text())
    data["version"] = 2
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    with pytest.raises(
        ImportFailed, match=r"format version 2 is not supported; this enchant-worker reads version 1"
    ):
        read_export(newer)
    data["version"] = 1
    del data["chapters"][0]["scenes"][0]["title"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(
        ImportFailed, match=r"does not match the story schema at chapters/0/scenes/0: 'title' is a required"
    ):
        read_export(broken)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ImportFailed, match="not an Enchant story export"):
        read_export(other)
