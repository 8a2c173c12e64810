"""Analytics event validation without a database: types, fields, bounds, the references found."""

from __future__ import annotations

import uuid

import pytest

from enchant_worker.analytics.events import EVENT_TYPES, InvalidEvent, parse_batch, parse_event

STORY = str(uuid.uuid4())


def test_each_type_names_its_references_with_their_request_path():
    event = parse_event(3, {"event_type": "story_view", "event_data": {"story_id": STORY, "scene_id": STORY}})
    assert [(r.field, r.kind) for r in event.refs] == [
        ("events[3].event_data.story_id", "story"),
        ("events[3].event_data.scene_id", "scene"),
    ]
    custom = parse_event(0, {"event_type": "custom.x_1", "event_data": {"image_id": STORY, "free": [1, 2]}})
    assert [(r.field, r.kind) for r in custom.refs] == [("events[0].event_data.image_id", "image")]
    assert parse_event(0, {"event_type": "search", "event_data": {"query": "q"}}).refs == ()


@pytest.mark.parametrize(
    ("raw", "loc", "words"),
    [
        (
            {"event_type": "story_view", "event_data": {"story_id": STORY, "x": 1}},
            ("event_data", "x"),
            "unknown field",
        ),
        ({"event_type": "story_view", "event_data": {}}, ("event_data", "story_id"), "Field required"),
        (
            {"event_type": "image_rating", "event_data": {"image_id": STORY, "rating": 4.5}},
            ("event_data", "rating"),
            "",
        ),
        (
            {"event_type": "image_rating", "event_data": {"image_id": STORY, "rating": "5"}},
            ("event_data", "rating"),
            "",
        ),
        (
            {"event_type": "reading_progress", "event_data": {"story_id": STORY, "seconds": 0}},
            ("event_data", "seconds"),
            "",
        ),
        ({"event_type": "Custom.X"}, ("event_type",), "custom.NAME"),
        ({"event_type": None}, ("event_type",), "missing"),
        ({"event_type": "search", "event_data": [1]}, ("event_data",), "JSON object"),
        (
            {"event_type": "search", "session_id": "x" * 129, "event_data": {"query": ""}},
            ("session_id",),
            "128",
        ),
    ],
)
def test_mistakes_are_located(raw, loc, words):
    with pytest.raises(InvalidEvent) as caught:
        parse_event(7, raw)
    assert caught.value.loc[:3] == ("body", "events", 7) and caught.value.loc[3 : 3 + len(loc)] == loc
    assert str(caught.value).startswith("events[7].") and words in str(caught.value)


def test_batches_are_bounded():
    with pytest.raises(InvalidEvent, match="501 events, above the limit of 500"):
        parse_batch({"events": [{"event_type": "search", "event_data": {"query": "q"}}] * 501})
    with pytest.raises(InvalidEvent, match="unknown field"):
        parse_batch({"events": [], "more": 1})
    assert len(parse_batch({"events": [{"event_type": "search", "event_data": {"query": "q"}}] * 500})) == 500


def test_the_documented_types():
    assert set(EVENT_TYPES) == {
        "story_view",
        "reading_progress",
        "image_view",
        "image_rating",
        "image_download",
        "story_share",
        "search",
    }
