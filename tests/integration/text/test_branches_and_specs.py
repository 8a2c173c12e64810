"""Branches as the seed means them (from the branch point on, while active), and the extract_scenes spec
as the central authorization step reads it."""

from __future__ import annotations

import uuid

import pytest

from enchant_worker.errors import InvalidJob
from enchant_worker.handlers.scene_context import load_scene
from enchant_worker.jobspecs import WRITE, job_types, references
from enchant_worker.jobspecs.extract_scenes import ExtractScenesSpec


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()["id"]


@pytest.fixture
def story(conn):
    story = one(conn, "INSERT INTO stories (title) VALUES ('S') RETURNING id")
    ids = {"story": story}
    for n in (1, 3):
        chapter = one(
            conn, "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, %s) RETURNING id", story, n
        )
        ids[f"scene{n}"] = one(
            conn, "INSERT INTO scenes (chapter_id, summary) VALUES (%s, 'x') RETURNING id", chapter
        )
    ids["mara"] = one(
        conn,
        "INSERT INTO characters (story_id, name, appearance_description) "
        "VALUES (%s, 'Mara', 'grey braid') RETURNING id",
        story,
    )
    for n in (1, 3):
        conn.execute("INSERT INTO scene_characters VALUES (%s, %s)", (ids[f"scene{n}"], ids["mara"]))
    ids["branch"] = one(
        conn,
        "INSERT INTO story_branches (parent_story_id, branch_name, branch_point_chapter) "
        "VALUES (%s, 'what if', 2) RETURNING id",
        story,
    )
    # a state recorded for chapter 1 (before the branch point: must never apply)
    conn.execute(
        "INSERT INTO branch_character_states (branch_id, character_id, chapter_number, "
        "appearance_description) VALUES (%s, %s, 1, 'red cloak')",
        (ids["branch"], ids["mara"]),
    )
    return ids


def test_a_branch_applies_from_its_branch_point(conn, story):
    before = load_scene(conn, story["scene1"], story["branch"])
    assert before.scene.characters[0].branch_state is None  # chapter 1 is before the branch point
    after = load_scene(conn, story["scene3"], story["branch"])
    assert after.scene.characters[0].branch_state.appearance_description == "red cloak"


def test_an_inactive_branch_is_refused(conn, story):
    conn.execute("UPDATE story_branches SET is_active = FALSE WHERE id = %s", (story["branch"],))
    with pytest.raises(InvalidJob, match="branch_id: branch 'what if' is inactive"):
        load_scene(conn, story["scene3"], story["branch"])


def test_the_spec_marks_the_chapter_for_write_and_is_user_allowed():
    spec = ExtractScenesSpec(chapter_id=uuid.uuid4())
    [ref] = list(references(spec))
    assert (ref.field, ref.kind, ref.right) == ("chapter_id", "chapter", WRITE)
    entry = job_types()["extract_scenes"]
    assert entry.spec is ExtractScenesSpec and entry.user_allowed
