"""Story analysis routes with two users: POST /stories/{id}/analyze through the queue on the sample book,
then insights, a scene's quality, suggestions and metrics; the other user gets 403 on every route and on
the job's story_id reference; a collaborator and an admin may read; bad windows and unanalysed stories
are answered with what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.workers import WorkerThreads

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"
MISSING = "00000000-0000-0000-0000-000000000009"
FIELDS = (
    "overall",
    "narrative_coherence",
    "visual_potential",
    "character_development",
    "pacing",
    "emotional_impact",
)


def run(db, settings, types):
    _, thread = WorkerThreads(db, settings).start(types=list(types), burst=True)
    thread.join(120)
    assert not thread.is_alive()


@pytest.fixture
def story(client, alice, db, settings) -> dict:
    r = client.post(
        "/v1/stories",
        params={"extract": "true"},
        headers=alice.headers,
        json={"text": SAMPLE.read_text(), "format": "markdown"},
    )
    assert r.status_code == 201, r.text
    run(db, settings, ["extract_scenes"])
    return r.json()


@pytest.fixture
def analysed(client, alice, story, db, settings) -> dict:
    r = client.post(f"/v1/stories/{story['story_id']}/analyze", headers=alice.headers, json={})
    assert r.status_code == 202, r.text
    run(db, settings, ["analyze_story"])
    job = client.get(f"/v1/jobs/{r.json()['job_id']}", headers=alice.headers).json()
    assert job["status"] == "completed", job
    return story


def test_sample_book_analysis_through_the_api(client, alice, analysed):
    sid = analysed["story_id"]
    insights = client.get(f"/v1/stories/{sid}/insights", headers=alice.headers)
    assert insights.status_code == 200, insights.text
    body = insights.json()
    assert body["analyzer"] == "builtin" and body["stale"] is False
    assert set(FIELDS) <= set(body["insights"]["scores"]) and body["insights"]["counts"]["scenes"] == 6
    assert len(body["pacing"]["tension_curve"]) == 6 and body["pacing"]["pacing_inconsistencies"] == []
    scene_id = body["scenes"][0]["scene_id"]
    quality = client.get(f"/v1/scenes/{scene_id}/quality", headers=alice.headers).json()
    assert all(0 <= quality[f] <= 1 for f in FIELDS) and quality["certain"] and not quality["stale"]
    assert quality["evidence"]["visual_potential"]["why"]
    suggestions = client.get(f"/v1/stories/{sid}/suggestions", headers=alice.headers).json()
    assert suggestions["enhancement"]["auto_fixes"] == []
    assert "builtin analyzer proposes no text edits" in suggestions["enhancement"]["auto_fixes_note"]
    assert all(
        {"type", "description", "suggested_content", "confidence", "reasoning"} <= set(s)
        for s in suggestions["scenes"]
    )
    rows = client.get(f"/v1/stories/{sid}/metrics", headers=alice.headers).json()
    assert {"quality_overall", "character_development_score", "words"} <= {m["metric_type"] for m in rows}
    only = client.get(
        f"/v1/stories/{sid}/metrics", params={"metric_type": "quality_overall"}, headers=alice.headers
    ).json()
    assert len(only) == 1 and only[0]["metric_value"] == body["insights"]["scores"]["overall"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        client.get(f"/v1/stories/{sid}/metrics", params={"from": future}, headers=alice.headers).json() == []
    )
    assert len(
        client.get(f"/v1/stories/{sid}/metrics", params={"to": future}, headers=alice.headers).json()
    ) == len(rows)
    bad = client.get(
        f"/v1/stories/{sid}/metrics", params={"from": future, "to": future}, headers=alice.headers
    )
    assert bad.status_code == 422 and "must be after" in bad.text
    # the stored scores are not user metadata: not shown there, not writable there (no forged score)
    assert client.get(f"/v1/entities/scene/{scene_id}/metadata", headers=alice.headers).json() == {}
    forged = client.put(
        f"/v1/entities/scene/{scene_id}/metadata/analysis.quality",
        headers=alice.headers,
        json={"value": {"overall": 1.0}},
    )
    assert forged.status_code == 422 and "written by analyze_story only" in forged.text


def test_other_user_is_refused_everywhere_collaborator_and_admin_may_read(
    client, alice, bob, admin, analysed, store
):
    sid = analysed["story_id"]
    scene_id = client.get(f"/v1/stories/{sid}/insights", headers=alice.headers).json()["scenes"][0][
        "scene_id"
    ]
    reads = [
        f"/v1/stories/{sid}/insights",
        f"/v1/stories/{sid}/suggestions",
        f"/v1/stories/{sid}/metrics",
        f"/v1/scenes/{scene_id}/quality",
    ]
    for url in reads:
        r = client.get(url, headers=bob.headers)
        assert r.status_code == 403 and "another user" in r.text, url
        assert client.get(url, headers=admin.headers).status_code == 200, url
    r = client.post(f"/v1/stories/{sid}/analyze", headers=bob.headers, json={})
    assert r.status_code == 403
    # the job's story_id reference, through the generic job route: refused naming the field
    r = client.post(
        "/v1/jobs", headers=bob.headers, json={"job_type": "analyze_story", "metadata": {"story_id": sid}}
    )
    assert r.status_code == 403 and "story_id" in r.text, r.text
    # a collaborator (accepted, read rights) may read
    store.conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, invited_by, accepted_at, status) "
        "VALUES (%s, %s, 'viewer', %s, NOW(), 'accepted')",
        (sid, bob.user_id, alice.user_id),
    )
    for url in reads:
        assert client.get(url, headers=bob.headers).status_code == 200, url


def test_unanalysed_and_unknown(client, alice, story):
    sid = story["story_id"]
    r = client.get(f"/v1/stories/{sid}/insights", headers=alice.headers)
    assert r.status_code == 404 and f"POST /stories/{sid}/analyze" in r.text
    assert client.get(f"/v1/stories/{sid}/metrics", headers=alice.headers).json() == []
    assert client.get(f"/v1/stories/{MISSING}/insights", headers=alice.headers).status_code == 404
    assert client.post(f"/v1/stories/{MISSING}/analyze", headers=alice.headers, json={}).status_code == 404
    r = client.post(f"/v1/stories/{sid}/analyze", headers=alice.headers, json={"analyzer": "magic"})
    assert r.status_code == 422 and "analyzer" in r.text
    r = client.post(f"/v1/stories/{sid}/analyze", headers=alice.headers, json={"text_model": "x"})
    assert r.status_code == 422 and "only the llm analyzer" in r.text
