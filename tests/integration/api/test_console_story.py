"""The console's story pages: the list with each story's latest overall score, and a story's page with
its scores chart, pacing curve, enhancement rules and suggestions; admins only; stale and unanalysed
stories say so; text from the story is escaped."""

from __future__ import annotations

from pathlib import Path

from tests.support.workers import WorkerThreads

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"


def _run(db, settings, types):
    _, thread = WorkerThreads(db, settings).start(types=types, burst=True)
    thread.join(120)


def test_story_page_shows_scores_pacing_and_suggestions(client, admin, alice, db, settings, conn):
    text = SAMPLE.read_text().replace("# The Lamp at Marrow Point", "# The Lamp <script>x</script>")
    sid = client.post(
        "/v1/stories",
        params={"extract": "true"},
        headers=alice.headers,
        json={"text": text, "format": "markdown"},
    ).json()["story_id"]
    _run(db, settings, ["extract_scenes"])
    client.post("/dashboard", data={"key": alice.key}, follow_redirects=False)
    assert client.get(f"/dashboard/stories/{sid}").status_code in (401, 403)  # a user key is not enough
    client.cookies.clear()
    client.post("/dashboard", data={"key": admin.key}, follow_redirects=False)
    page = client.get(f"/dashboard/stories/{sid}").text
    assert "not analysed yet" in page and f"enchant-worker analyze {sid}" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    client.post(f"/v1/stories/{sid}/analyze", headers=alice.headers, json={})
    _run(db, settings, ["analyze_story"])
    listing = client.get("/dashboard/stories")
    assert listing.status_code == 200 and f'href="/dashboard/stories/{sid}"' in listing.text
    page = client.get(f"/dashboard/stories/{sid}")
    assert page.status_code == 200
    html = page.text
    assert (
        'id="scores"' in html and "character development" in html and 'aria-label="scores from 0 to 1' in html
    )
    assert 'id="pacing-curve" data-points="6"' in html and "tension (0-1)" in html
    assert "Enhancement (overall" in html and "proposes no text edits" in html and "Suggestions" in html
    assert "changed since this analysis" not in html
    assert "http://" not in html and "https://" not in html
    conn.execute(
        "UPDATE chapters SET content = content || ' More.' WHERE story_id = %s AND chapter_number = 1", (sid,)
    )
    assert "changed since this analysis" in client.get(f"/dashboard/stories/{sid}").text
    assert client.get("/dashboard/stories/00000000-0000-0000-0000-000000000009").status_code == 404
