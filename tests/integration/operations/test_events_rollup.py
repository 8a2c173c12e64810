"""Analytics events rolled up into story_metrics and images.user_rating, and expired after their retention
period: through the task functions, the scheduler service, the schedule file and the CLI."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from enchant_worker.analytics.rollup import expiry_cutoff, rollup_events
from enchant_worker.config import Settings
from enchant_worker.errors import ConfigurationError
from enchant_worker.scheduling import tasks
from enchant_worker.scheduling.schedule import ScheduleConfig, parse_every, parse_schedule
from enchant_worker.scheduling.service import SchedulerService
from tests.support.stories import story_with_image
from tests.support.waiting import wait_for

from .conftest import cli

NOW = datetime.now(UTC)
TODAY = NOW.date()
TODAY_NOON = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=12)
YESTERDAY_NOON = TODAY_NOON - timedelta(days=1)


def _user(conn) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO users (email) VALUES (%s) RETURNING id", (f"{uuid.uuid4()}@x",)
    ).fetchone()["id"]


def _event(conn, user, event_type: str, data: dict, at: datetime, session: str | None = None) -> None:
    conn.execute(
        "INSERT INTO user_analytics_events (user_id, event_type, event_data, session_id, created_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        (user, event_type, json.dumps(data, default=str), session, at),
    )


def _metrics(conn, story) -> dict[tuple[str, str], Decimal]:
    rows = conn.execute(
        "SELECT metric_type, metric_value, metadata FROM story_metrics WHERE story_id = %s", (story,)
    ).fetchall()
    return {(r["metadata"]["day"], r["metric_type"]): r["metric_value"] for r in rows}


def _rating(conn, image) -> Decimal | None:
    return conn.execute("SELECT user_rating FROM images WHERE id = %s", (image,)).fetchone()["user_rating"]


def _count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM user_analytics_events").fetchone()["n"]


@pytest.fixture
def readers(conn):
    """An author's story read on two days by two readers (alice rates an image twice, bob once)."""
    author, alice, bob = _user(conn), _user(conn), _user(conn)
    st = story_with_image(conn, author)
    s, img = str(st["story"]), str(st["image"])
    for user, at in ((alice, YESTERDAY_NOON), (alice, TODAY_NOON), (bob, TODAY_NOON), (alice, TODAY_NOON)):
        _event(conn, user, "story_view", {"story_id": s}, at)
    _event(conn, None, "story_view", {"story_id": s}, TODAY_NOON, session="anon-1")
    _event(conn, alice, "reading_progress", {"story_id": s, "seconds": 30}, TODAY_NOON)
    _event(conn, alice, "reading_progress", {"story_id": s, "seconds": 12.5}, TODAY_NOON)
    _event(conn, bob, "reading_progress", {"story_id": s, "seconds": 60}, YESTERDAY_NOON)
    _event(conn, alice, "image_rating", {"image_id": img, "rating": 2}, TODAY_NOON - timedelta(hours=1))
    _event(conn, alice, "image_rating", {"image_id": img, "rating": 4}, TODAY_NOON)  # her latest
    _event(conn, bob, "image_rating", {"image_id": img, "rating": 5}, TODAY_NOON)
    _event(conn, alice, "search", {"query": "x"}, TODAY_NOON)  # not a story metric
    return st


def test_rollup_writes_daily_reader_metrics_and_rerunning_never_double_counts(db, settings, conn, readers):
    ctx = tasks.TaskContext(db, settings, NOW)
    first = tasks.rollup_events(ctx)
    assert first["stories"] == 1 and first["images_rated"] == 1
    today, yesterday = TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    expected = {
        (today, "views"): 4,
        (today, "unique_viewers"): 3,
        (today, "reading_seconds"): Decimal("42.5"),
        (today, "readers"): 1,
        (today, "image_ratings"): 2,
        (today, "mean_image_rating"): Decimal("4.5"),
        (yesterday, "views"): 1,
        (yesterday, "unique_viewers"): 1,
        (yesterday, "reading_seconds"): 60,
        (yesterday, "readers"): 1,
        (yesterday, "image_ratings"): 0,
    }
    assert _metrics(conn, readers["story"]) == expected
    assert _rating(conn, readers["image"]) == Decimal("4.50")  # mean of alice's latest (4) and bob's (5)
    for _ in range(2):  # again and again: the same rows, the same values
        tasks.rollup_events(ctx)
    assert _metrics(conn, readers["story"]) == expected
    assert conn.execute("SELECT count(*) AS n FROM story_metrics").fetchone()["n"] == len(expected)
    assert _rating(conn, readers["image"]) == Decimal("4.50")
    # New events of today update today's rows; an older rating never replaces a newer one.
    _event(conn, _user(conn), "story_view", {"story_id": str(readers["story"])}, NOW)
    alice = conn.execute(
        "SELECT user_id FROM user_analytics_events WHERE event_data ->> 'rating' = '4'"
    ).fetchone()
    _event(
        conn,
        alice["user_id"],
        "image_rating",
        {"image_id": str(readers["image"]), "rating": 1},
        TODAY_NOON - timedelta(hours=2),
    )
    tasks.rollup_events(ctx)
    metrics = _metrics(conn, readers["story"])
    assert metrics[(today, "views")] == 5 and metrics[(today, "unique_viewers")] == 4
    assert _rating(conn, readers["image"]) == Decimal("4.50")


def test_rollup_ignores_deleted_stories_and_malformed_rows(db, settings, conn):
    user = _user(conn)
    st = story_with_image(conn, user)
    _event(conn, user, "story_view", {"story_id": "not-a-uuid"}, NOW)
    _event(conn, user, "story_view", {"story_id": str(uuid.uuid4())}, NOW)  # no such story (any more)
    _event(conn, user, "reading_progress", {"story_id": str(st["story"]), "seconds": "lots"}, NOW)
    _event(conn, user, "image_rating", {"image_id": str(st["image"]), "rating": 9}, NOW)
    result = tasks.rollup_events(tasks.TaskContext(db, settings, NOW))
    assert result["images_rated"] == 0
    metrics = _metrics(conn, st["story"])
    assert (
        metrics[(TODAY.isoformat(), "reading_seconds")] == 0 and metrics[(TODAY.isoformat(), "readers")] == 1
    )
    assert conn.execute("SELECT count(DISTINCT story_id) AS n FROM story_metrics").fetchone()["n"] == 1


def test_expiry_deletes_whole_days_past_retention_and_keeps_the_rollups(db, settings, conn):
    user = _user(conn)
    st = story_with_image(conn, user)
    old = NOW - timedelta(days=100)
    _event(conn, user, "story_view", {"story_id": str(st["story"])}, old)
    _event(conn, user, "story_view", {"story_id": str(st["story"])}, NOW - timedelta(days=5))
    _event(conn, user, "story_view", {"story_id": str(st["story"])}, NOW)
    old_day = old.date()
    rollup_events(conn, old_day, TODAY)  # a backfill: every day with events
    before = _metrics(conn, st["story"])
    assert before[(old_day.isoformat(), "views")] == 1
    result = tasks.expire_events(tasks.TaskContext(db, settings, NOW, {"retention_days": 90.0}))
    assert result["deleted"] == 1 and result["retention_days"] == 90.0
    assert _count(conn) == 2
    # The expired day's metrics stay, and rolling that day up again leaves them as they were.
    rollup_events(conn, old_day, TODAY)
    assert _metrics(conn, st["story"]) == before
    # Idempotent: nothing more to delete.
    assert tasks.expire_events(tasks.TaskContext(db, settings, NOW, {"retention_days": 90.0}))["deleted"] == 0


def test_expiry_forgets_the_ratings_of_deleted_images(db, settings, conn, readers):
    tasks.rollup_events(tasks.TaskContext(db, settings, NOW))
    assert conn.execute("SELECT count(*) AS n FROM image_ratings").fetchone()["n"] == 2
    conn.execute("DELETE FROM images WHERE id = %s", (readers["image"],))
    result = tasks.expire_events(tasks.TaskContext(db, settings, NOW))
    assert result["ratings_of_deleted_images"] == 2 and result["retention_days"] == 90.0
    assert conn.execute("SELECT count(*) AS n FROM image_ratings").fetchone()["n"] == 0


def test_expiry_never_deletes_what_the_rollup_still_reads():
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    # Retention 90 days: the start of the UTC day 90 days back.
    assert expiry_cutoff(now, 90, 1) == datetime(2025, 12, 10, tzinfo=UTC)
    # A retention shorter than the roll-up window is stretched to it (today and 1 day before stay).
    assert expiry_cutoff(now, 0.1, 1) == datetime(2026, 3, 9, tzinfo=UTC)
    assert expiry_cutoff(now, 2.5, 0) == datetime(2026, 3, 8, tzinfo=UTC)


def test_retention_days_comes_from_the_schedule_file(db, settings, conn, tmp_path):
    user = _user(conn)
    st = story_with_image(conn, user)
    for days in (40, 20, 0):
        _event(conn, user, "story_view", {"story_id": str(st["story"])}, NOW - timedelta(days=days))
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[tasks.expire_events]\ncron = "43 3 * * *"\nretention_days = 30\n')
    configured = settings.model_copy(update={"schedule_file": schedule})
    result = tasks.run_now("expire_events", db, configured)
    assert result["retention_days"] == 30.0 and result["deleted"] == 1 and _count(conn) == 2
    assert tasks.run_now("rollup_events", db, configured)["stories"] == 1


def test_schedule_file_task_settings_are_checked_by_line():
    defaults = tasks.default_timings(Settings())
    options = tasks.task_options()
    text = '[tasks.expire_events]\nevery = "1d"\nretention_days = 7\n'
    config = parse_schedule(
        {"tasks": {"expire_events": {"every": "1d", "retention_days": 7}}},
        text,
        defaults,
        tz=ZoneInfo("UTC"),
        task_options=options,
    )
    assert config.options["expire_events"] == {"retention_days": 7.0}
    config = parse_schedule({}, "", defaults, tz=ZoneInfo("UTC"), task_options=options)
    assert config.options["expire_events"] == {"retention_days": 90.0}
    for bad in ("x", -1, 0, True):
        text = f"[tasks.expire_events]\nretention_days = {json.dumps(bad)}\n"
        with pytest.raises(
            ConfigurationError,
            match=r"line 2 \[tasks.expire_events\]: retention_days: must be a "
            "positive number",
        ):
            parse_schedule(
                {"tasks": {"expire_events": {"retention_days": bad}}},
                text,
                defaults,
                tz=ZoneInfo("UTC"),
                task_options=options,
            )
    with pytest.raises(ConfigurationError, match="unknown setting 'retention_days'"):
        parse_schedule(
            {"tasks": {"rollup_events": {"retention_days": 3}}},
            "[tasks.rollup_events]\nretention_days = 3\n",
            defaults,
            tz=ZoneInfo("UTC"),
            task_options=options,
        )


def test_the_scheduler_rolls_up_and_expires_on_schedule(db, settings, conn, readers):
    _event(conn, _user(conn), "story_view", {"story_id": str(readers["story"])}, NOW - timedelta(days=60))
    config = ScheduleConfig(
        {"rollup_events": parse_every("0.3s"), "expire_events": parse_every("0.3s")},
        [],
        None,
        {"expire_events": {"retention_days": 30.0}},
    )
    service = SchedulerService(db, settings, config=config, identity="enchant-scheduler:test:events")
    service.start()
    try:
        wait_for(
            lambda: _metrics(conn, readers["story"]).get((TODAY.isoformat(), "views")) == 4,
            15,
            "the scheduler to roll the events up",
        )
        wait_for(lambda: _count(conn) == 12, 15, "the scheduler to expire the 60-day-old event")
    finally:
        service.stop()
    runs = conn.execute(
        "SELECT task, status FROM maintenance_runs WHERE task IN ('rollup_events', 'expire_events')"
    ).fetchall()
    assert {r["task"] for r in runs} == {"rollup_events", "expire_events"}
    assert all(r["status"] == "completed" for r in runs)
    assert _rating(conn, readers["image"]) == Decimal("4.50")


def test_events_cli_rolls_up_expires_and_counts(ops_env, conn, readers):
    _event(conn, _user(conn), "story_view", {"story_id": str(readers["story"])}, NOW - timedelta(days=200))
    old_day = (NOW - timedelta(days=200)).date().isoformat()
    r = cli("events", "rollup", "--from", old_day, env=ops_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stories"] == 1
    assert _metrics(conn, readers["story"])[(old_day, "views")] == 1
    r = cli("events", "stats", "--json", env=ops_env)
    assert r.returncode == 0, r.stderr
    assert sum(row["events"] for row in json.loads(r.stdout)) == 13
    r = cli("events", "expire", env=ops_env)  # the schedule file's 90 days
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["deleted"] == 1 and _count(conn) == 12
    r = cli("events", "rollup", "--from", "2026-02-02", "--to", "2026-02-01", env=ops_env)
    assert r.returncode == 2 and "after --to" in r.stderr
    r = cli("maintenance", "run", "rollup_events", env=ops_env)
    assert r.returncode == 0, r.stderr
    assert _metrics(conn, readers["story"])[(old_day, "views")] == 1  # kept after its events expired
