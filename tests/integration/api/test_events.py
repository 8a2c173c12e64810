"""POST /v1/events and GET /v2/analytics/events: validation, rights on the ids events name, the client
address behind (trusted) proxies, the per-user rate limit, all-or-nothing batches."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from enchant_worker.analytics.events import MAX_EVENT_DATA_BYTES
from enchant_worker.api import create_app
from enchant_worker.handlers import default_registry
from tests.support.stories import story_with_image

PEER = "203.0.113.9"  # the client's own address as the API sees the TCP connection
PROXY = "10.1.2.3"


def _story(conn, owner: uuid.UUID) -> dict[str, str]:
    """A story with a chapter, a scene and an image, ids as the JSON of an event names them."""
    return {kind: str(row_id) for kind, row_id in story_with_image(conn, owner).items()}


def _events(conn) -> list[dict]:
    return conn.execute(
        "SELECT user_id, event_type, event_data, session_id, host(ip_address) AS ip, user_agent "
        "FROM user_analytics_events ORDER BY created_at, id"
    ).fetchall()


def _view(story: str, **extra) -> dict:
    return {"event_type": "story_view", "event_data": {"story_id": story, **extra}, "session_id": "s-1"}


@pytest.fixture
def peer_client(app) -> Iterator[TestClient]:
    with TestClient(app, client=(PEER, 40000)) as c:
        yield c


@pytest.fixture
def proxied_client(settings, db_url) -> Iterator[TestClient]:
    """An app behind a trusted proxy (10.0.0.0/8), reached through it."""
    app = create_app(
        settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}),
        database_url=db_url,
        job_types=default_registry(plugins=False),
    )
    with TestClient(app, client=(PROXY, 40000)) as c:
        yield c


def test_a_batch_is_stored_with_the_peer_address_and_user_agent(peer_client, conn, alice):
    st = _story(conn, alice.user_id)
    batch = [
        _view(st["story"], chapter_id=st["chapter"], scene_id=st["scene"], source="library"),
        {
            "event_type": "reading_progress",
            "event_data": {"story_id": st["story"], "seconds": 42.5, "progress_percent": 10},
        },
        {"event_type": "image_rating", "event_data": {"image_id": st["image"], "rating": 4}},
        {"event_type": "search", "event_data": {"query": "dragons", "results": 3}},
        {"event_type": "custom.bookmark", "event_data": {"story_id": st["story"], "page": 3}},
    ]
    r = peer_client.post(
        "/v1/events", json={"events": batch}, headers={**alice.headers, "User-Agent": "reader/1.0"}
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 5}
    rows = {e["event_type"]: e for e in _events(conn)}
    assert sorted(rows) == sorted(e["event_type"] for e in batch)
    assert {e["ip"] for e in rows.values()} == {PEER} and {e["user_agent"] for e in rows.values()} == {
        "reader/1.0"
    }
    assert {e["user_id"] for e in rows.values()} == {alice.user_id}
    assert (
        rows["story_view"]["event_data"] == batch[0]["event_data"]
        and rows["story_view"]["session_id"] == "s-1"
    )


def test_a_forged_forwarded_for_from_an_untrusted_client_is_ignored(peer_client, conn, alice):
    st = _story(conn, alice.user_id)
    r = peer_client.post(
        "/v1/events",
        json={"events": [_view(st["story"])]},
        headers={**alice.headers, "X-Forwarded-For": "198.51.100.77", "X-Real-IP": "198.51.100.78"},
    )
    assert r.status_code == 202, r.text
    assert _events(conn)[0]["ip"] == PEER


def test_a_trusted_proxys_header_names_the_client(proxied_client, conn, alice):
    st = _story(conn, alice.user_id)
    # The client wrote a forged address itself; the proxy appended the address it saw, then another
    # trusted hop its own: the right-most untrusted address is the client.
    r = proxied_client.post(
        "/v1/events",
        json={"events": [_view(st["story"])]},
        headers={**alice.headers, "X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.9.9.9"},
    )
    assert r.status_code == 202, r.text
    r = proxied_client.post("/v1/events", json={"events": [_view(st["story"])]}, headers=alice.headers)
    assert r.status_code == 202, r.text  # no header: the proxy itself is all we know
    r = proxied_client.post(
        "/v1/events",
        json={"events": [_view(st["story"])]},
        headers={**alice.headers, "X-Forwarded-For": "not-an-address"},
    )
    assert r.status_code == 202, r.text
    assert [e["ip"] for e in _events(conn)] == [
        "198.51.100.7",
        PROXY,
        PROXY,
    ]  # one event per request: in order


def test_unknown_fields_are_refused_with_the_field_named(peer_client, conn, alice):
    st = _story(conn, alice.user_id)
    r = peer_client.post(
        "/v1/events", json={"events": [_view(st["story"], colour="red")]}, headers=alice.headers
    )
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "events", 0, "event_data", "colour"]
    assert "unknown field" in error["msg"] and "story_id" in error["msg"]
    r = peer_client.post(
        "/v1/events", json={"events": [{**_view(st["story"]), "when": "now"}]}, headers=alice.headers
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events", 0, "when"]
    r = peer_client.post(
        "/v1/events", json={"events": [_view(st["story"])], "extra": 1}, headers=alice.headers
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "extra"]
    r = peer_client.post(
        "/v1/events", json={"events": [{"event_type": "page_flip", "event_data": {}}]}, headers=alice.headers
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events", 0, "event_type"]
    assert "story_view" in r.json()["detail"][0]["msg"] and "custom.NAME" in r.json()["detail"][0]["msg"]
    bad = [
        {"event_type": "image_rating", "event_data": {"image_id": st["image"], "rating": 6}},
        {"event_type": "reading_progress", "event_data": {"story_id": st["story"], "seconds": 99999}},
        {"event_type": "story_view", "event_data": {"story_id": "not-a-uuid"}},
        {"event_type": "story_view", "event_data": {"story_id": st["story"]}, "session_id": "has space"},
    ]
    for i, event in enumerate(bad):
        r = peer_client.post(
            "/v1/events", json={"events": [_view(st["story"]), event]}, headers=alice.headers
        )
        assert r.status_code == 422, (i, r.text)
        assert r.json()["detail"][0]["loc"][:3] == ["body", "events", 1], r.text
    assert _events(conn) == []


def test_oversized_and_too_deep_event_data_are_refused_with_the_limit(peer_client, conn, alice):
    st = _story(conn, alice.user_id)
    big = {"event_type": "custom.note", "event_data": {"text": "x" * MAX_EVENT_DATA_BYTES}}
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"]), big]}, headers=alice.headers)
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "events", 1, "event_data"]
    assert f"above the limit of {MAX_EVENT_DATA_BYTES} bytes per event" in error["msg"]
    deep = {"event_type": "custom.note", "event_data": {"a": {"b": {"c": {"d": {"e": 1}}}}}}
    r = peer_client.post("/v1/events", json={"events": [deep]}, headers=alice.headers)
    assert r.status_code == 422 and "limit of 4 levels" in r.json()["detail"][0]["msg"]
    r = peer_client.post(
        "/v1/events",
        content=b'{"events": [{"event_type": "custom.x", "event_data": {"n": NaN}}]}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "finite" in r.json()["detail"][0]["msg"], r.text
    nul = {"event_type": "custom.note", "event_data": {"text": "a\u0000b"}}
    r = peer_client.post("/v1/events", json={"events": [nul]}, headers=alice.headers)
    assert r.status_code == 422 and "NUL" in r.json()["detail"][0]["msg"]
    assert _events(conn) == []


def test_a_batch_of_501_is_refused_and_500_accepted(peer_client, conn, alice):
    st = _story(conn, alice.user_id)
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 501}, headers=alice.headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events"] and "500" in r.json()["detail"][0]["msg"]
    r = peer_client.post("/v1/events", json={"events": []}, headers=alice.headers)
    assert r.status_code == 422
    assert _events(conn) == []
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 500}, headers=alice.headers)
    assert r.status_code == 202 and r.json() == {"accepted": 500}
    assert conn.execute("SELECT count(*) AS n FROM user_analytics_events").fetchone()["n"] == 500


def test_events_about_someone_elses_story_or_image_are_403_naming_the_field(peer_client, conn, alice, bob):
    mine, theirs = _story(conn, alice.user_id), _story(conn, bob.user_id)
    cases = [
        (_view(theirs["story"]), "events[1].event_data.story_id"),
        (_view(mine["story"], scene_id=theirs["scene"]), "events[1].event_data.scene_id"),
        (
            {"event_type": "image_rating", "event_data": {"image_id": theirs["image"], "rating": 5}},
            "events[1].event_data.image_id",
        ),
        (
            {"event_type": "custom.bookmark", "event_data": {"chapter_id": theirs["chapter"]}},
            "events[1].event_data.chapter_id",
        ),
    ]
    for event, field in cases:
        r = peer_client.post(
            "/v1/events", json={"events": [_view(mine["story"]), event]}, headers=alice.headers
        )
        assert r.status_code == 403, r.text
        assert r.json()["field"] == field and r.json()["detail"].startswith(field)
    # An id that names nothing is a 422 at that field.
    r = peer_client.post("/v1/events", json={"events": [_view(str(uuid.uuid4()))]}, headers=alice.headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events", 0, "event_data", "story_id"]
    assert _events(conn) == []
    # Bob may name his own.
    r = peer_client.post("/v1/events", json={"events": [_view(theirs["story"])]}, headers=bob.headers)
    assert r.status_code == 202


def test_readers_may_send_events_about_a_published_story_and_nothing_more(peer_client, conn, alice, bob):
    """A community reader's views, reading time and image events may name another user's published
    story (the VIEW right); an unpublished one stays 403, custom events keep to READ, and no job may
    work on the published story."""
    published, private = _story(conn, bob.user_id), _story(conn, bob.user_id)
    conn.execute(
        "INSERT INTO community_stories (story_id, published_by, title) VALUES (%s, %s, 'Out now')",
        (published["story"], bob.user_id),
    )
    reader_events = [
        _view(published["story"], chapter_id=published["chapter"], scene_id=published["scene"]),
        {
            "event_type": "reading_progress",
            "event_data": {"story_id": published["story"], "chapter_id": published["chapter"], "seconds": 30},
        },
        {"event_type": "image_view", "event_data": {"image_id": published["image"]}},
        {"event_type": "image_rating", "event_data": {"image_id": published["image"], "rating": 4}},
        {"event_type": "story_share", "event_data": {"story_id": published["story"]}},
    ]
    r = peer_client.post("/v1/events", json={"events": reader_events}, headers=alice.headers)
    assert r.status_code == 202, r.text
    assert sorted(e["event_type"] for e in _events(conn)) == sorted(e["event_type"] for e in reader_events)

    refused = [
        (_view(private["story"]), "events[0].event_data.story_id", "nor published in the community"),
        (
            _view(published["story"], scene_id=private["scene"]),
            "events[0].event_data.scene_id",
            "nor published in the community",
        ),
        (
            {"event_type": "image_view", "event_data": {"image_id": private["image"]}},
            "events[0].event_data.image_id",
            "not in a story published in the community",
        ),
        (
            {"event_type": "custom.bookmark", "event_data": {"chapter_id": published["chapter"]}},
            "events[0].event_data.chapter_id",
            "not shared with them",
        ),
    ]
    for event, field, why in refused:
        r = peer_client.post("/v1/events", json={"events": [event]}, headers=alice.headers)
        assert r.status_code == 403, r.text
        assert r.json()["field"] == field and why in r.json()["detail"], r.json()
    # Reading it is not working on it: a job naming the published scene is refused.
    r = peer_client.post(
        "/v2/jobs",
        json={"job_type": "generate_image", "metadata": {"steps": 2, "scene_id": published["scene"]}},
        headers=alice.headers,
    )
    assert r.status_code == 403, r.text
    assert len(_events(conn)) == len(reader_events)  # the refused batches stored nothing


def test_past_the_rate_limit_the_whole_batch_is_429_with_retry_after(peer_client, conn, alice, bob):
    st = _story(conn, alice.user_id)
    conn.execute(
        "UPDATE users SET quota_overrides = %s WHERE id = %s",
        (json.dumps({"events_per_minute": 5}), alice.user_id),
    )
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 3}, headers=alice.headers)
    assert r.status_code == 202
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 3}, headers=alice.headers)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert (
        "limit of 5 per minute" in r.json()["detail"]
        and "nothing of this batch was stored" in r.json()["detail"]
    )
    assert len(_events(conn)) == 3  # nothing of the refused batch
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 6}, headers=alice.headers)
    assert r.status_code == 429 and "send smaller batches" in r.json()["detail"]
    r = peer_client.post("/v1/events", json={"events": [_view(st["story"])] * 2}, headers=alice.headers)
    assert r.status_code == 202  # what is left of the minute
    assert len(_events(conn)) == 5
    # The limit is per user: bob is not held back by alice.
    theirs = _story(conn, bob.user_id)
    assert (
        peer_client.post(
            "/v1/events", json={"events": [_view(theirs["story"])] * 10}, headers=bob.headers
        ).status_code
        == 202
    )


def test_aggregates_are_for_admins_only(peer_client, conn, alice, admin):
    st = _story(conn, alice.user_id)
    batch = [_view(st["story"])] * 3 + [{"event_type": "search", "event_data": {"query": "x"}}]
    assert peer_client.post("/v1/events", json={"events": batch}, headers=alice.headers).status_code == 202
    assert peer_client.get("/v2/analytics/events", headers=alice.headers).status_code == 403
    r = peer_client.get("/v2/analytics/events", headers=admin.headers)
    assert r.status_code == 200, r.text
    items = {i["event_type"]: i for i in r.json()["items"]}
    assert items["story_view"]["events"] == 3 and items["story_view"]["users"] == 1
    assert items["story_view"]["sessions"] == 1 and items["search"]["events"] == 1
    assert r.json()["oldest_event_at"] is not None
    r = peer_client.get("/v2/analytics/events", params={"event_type": "search"}, headers=admin.headers)
    assert [i["event_type"] for i in r.json()["items"]] == ["search"]
    r = peer_client.get(
        "/v2/analytics/events", params={"from": "2000-01-01", "to": "2000-01-02"}, headers=admin.headers
    )
    assert r.json()["items"] == []
    r = peer_client.get(
        "/v2/analytics/events", params={"from": "2001-01-01", "to": "2000-01-02"}, headers=admin.headers
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "from"]


def test_events_need_a_key(peer_client):
    assert peer_client.post("/v1/events", json={"events": []}).status_code == 401


def test_concurrent_batches_cannot_both_slip_under_the_limit(db, settings, conn, alice):
    """A batch waits for another of the same user still being written, then counts it."""
    import threading

    from enchant_worker.analytics.events import parse_event
    from enchant_worker.analytics.recorder import Client, record_events
    from enchant_worker.errors import QuotaExceeded
    from enchant_worker.intake.actor import USER, Actor
    from enchant_worker.sql import q

    st = _story(conn, alice.user_id)
    conn.execute(
        "UPDATE users SET quota_overrides = %s WHERE id = %s",
        (json.dumps({"events_per_minute": 5}), alice.user_id),
    )
    events = [parse_event(i, _view(st["story"])) for i in range(3)]
    actor = Actor(alice.user_id, USER)
    outcome: list[object] = []
    with db.connection() as first, db.connection() as second:
        with first.transaction():  # a batch of 3 in flight: lock taken, rows written, not committed
            first.execute(q("lock_user_events"), {"user_id": alice.user_id})
            record_events(first, actor, events, Client(None, None), settings)

            def other_batch():
                try:
                    outcome.append(record_events(second, actor, events, Client(None, None), settings))
                except QuotaExceeded as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=other_batch)
            thread.start()
            thread.join(1.0)
            assert thread.is_alive() and outcome == []  # waiting for the first batch's lock
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], QuotaExceeded), outcome
    assert outcome[0].retry_after_s >= 1
    assert len(_events(conn)) == 3


def test_rolled_up_metrics_are_read_by_the_story_metrics_route_for_its_readers_only(
    peer_client, db, settings, conn, alice, bob
):
    """Events in, the scheduler's roll-up, and out through GET /v1/stories/{id}/metrics (story analysis)."""
    from datetime import UTC, datetime

    from enchant_worker.scheduling import tasks

    st = _story(conn, alice.user_id)
    batch = [
        _view(st["story"]),
        _view(st["story"]),
        {"event_type": "reading_progress", "event_data": {"story_id": st["story"], "seconds": 90}},
        {"event_type": "image_rating", "event_data": {"image_id": st["image"], "rating": 3}},
    ]
    assert peer_client.post("/v1/events", json={"events": batch}, headers=alice.headers).status_code == 202
    tasks.rollup_events(tasks.TaskContext(db, settings, datetime.now(UTC)))
    r = peer_client.get(f"/v1/stories/{st['story']}/metrics", headers=alice.headers)
    assert r.status_code == 200, r.text
    values = {m["metric_type"]: m["metric_value"] for m in r.json()}
    assert values["views"] == 2 and values["unique_viewers"] == 1 and values["reading_seconds"] == 90
    assert values["image_ratings"] == 1 and values["mean_image_rating"] == 3
    r = peer_client.get(
        f"/v1/stories/{st['story']}/metrics", params={"metric_type": "views"}, headers=alice.headers
    )
    assert [m["metric_type"] for m in r.json()] == ["views"] and r.json()[0]["metadata"]["source"] == "events"
    assert peer_client.get(f"/v1/stories/{st['story']}/metrics", headers=bob.headers).status_code in (
        403,
        404,
    )
