"""The CLI's side of multi-tenant safety: unknown job types, enqueueing for a user, tiers and quotas."""

from __future__ import annotations

import json

from tests.acceptance.test_cli_queue import cli


def _user(conn, email):
    return conn.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", (email,)).fetchone()["id"]


def test_unknown_job_type_exits_non_zero_listing_the_known_ones(cli_env):
    out = cli(cli_env, "enqueue", "no_such_type", check=False)
    assert out.returncode != 0
    assert "job_type: unknown job type 'no_such_type'; known:" in out.stderr
    assert "generate_image" in out.stderr and "Traceback" not in out.stderr


def test_enqueue_for_a_user_checks_their_rights(cli_env, conn):
    alice, bob = _user(conn, "alice@example.org"), _user(conn, "bob@example.org")
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 't') RETURNING id", (alice,)
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 1) RETURNING id", (story,)
    ).fetchone()["id"]
    scene = conn.execute(
        "INSERT INTO scenes (chapter_id, content) VALUES (%s, 'x') RETURNING id", (chapter,)
    ).fetchone()["id"]
    metadata = json.dumps({"scene_id": str(scene)})
    out = cli(cli_env, "enqueue", "generate_image", "--metadata", metadata, "--user", str(bob), check=False)
    assert out.returncode != 0 and "scene_id: this user may not change scene" in out.stderr, out.stderr
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0
    out = cli(cli_env, "enqueue", "generate_image", "--metadata", metadata, "--user", str(alice))
    job_id = out.stdout.strip()
    row = conn.execute(
        "SELECT user_id, entity_type, entity_id FROM processing_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row["user_id"] == alice and (row["entity_type"], row["entity_id"]) == ("scene", scene)
    # A user may not enqueue operational types; the local operator (no --user) may.
    out = cli(cli_env, "enqueue", "noop", "--user", str(alice), check=False)
    assert out.returncode != 0 and "job_type: a user key may not enqueue noop jobs" in out.stderr
    assert cli(cli_env, "enqueue", "noop", "--priority", "0").stdout.strip()


def test_tiers_and_quota_exceptions_from_the_cli(cli_env, conn):
    alice = _user(conn, "alice@example.org")
    out = cli(cli_env, "users", "set-tier", str(alice), "pro", "--quota", "images_per_day=1")
    assert "tier pro" in out.stdout and "images_per_day" in out.stdout
    listed = json.loads(cli(cli_env, "users", "list", "--json").stdout)
    assert [u["subscription_tier"] for u in listed if u["id"] == str(alice)] == ["pro"]
    assert cli(cli_env, "enqueue", "generate_image", "--metadata", '{"prompt": "x"}', "--user", str(alice))
    out = cli(
        cli_env,
        "enqueue",
        "generate_image",
        "--metadata",
        '{"prompt": "x"}',
        "--user",
        str(alice),
        check=False,
    )
    assert out.returncode != 0 and "quota:" in out.stderr and "midnight UTC" in out.stderr
    for bad in (["--quota", "images_per_hour=5"], ["--quota", "images_per_day=many"], []):
        out = cli(cli_env, "users", "set-tier", str(alice), *bad, check=False)
        assert out.returncode != 0 and "Traceback" not in out.stderr, (bad, out.stderr)
    cli(cli_env, "users", "set-tier", str(alice), "--quota", "images_per_day=")
    assert cli(cli_env, "enqueue", "generate_image", "--metadata", '{"prompt": "x"}', "--user", str(alice))
