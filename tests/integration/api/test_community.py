"""The community flow over the API with three users: publish, browse and search, read without a key,
like/bookmark/share/comment, counts kept exact, caches refreshed, and what stays private."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.stories import make_story

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stories(conn, settings, alice, bob):
    settings.storage.mkdir(parents=True, exist_ok=True)
    published = make_story(
        conn,
        settings.storage,
        user_id=alice.user_id,
        title="The Lantern River",
        chapters=1,
        scenes_per_chapter=2,
    )
    private = make_story(
        conn,
        settings.storage,
        user_id=alice.user_id,
        title="Drafts",
        chapters=1,
        scenes_per_chapter=1,
        seed=7,
    )
    return published, private


def test_the_community_flow_with_three_users(app, client, alice, bob, make_user, admin, stories):
    published, private = stories
    carol = make_user("carol@example.org")
    anonymous = TestClient(app)

    # Only the owner publishes; a second publish updates the listing.
    body = {
        "story_id": str(published.story_id),
        "description": "A river that remembers.",
        "tags": ["fantasy", "river"],
        "category": "fantasy",
    }
    assert client.post("/v1/community/stories", headers=bob.headers, json=body).status_code == 403
    r = client.post("/v1/community/stories", headers=alice.headers, json=body)
    assert r.status_code == 201 and r.json()["title"] == "The Lantern River"
    listing = r.json()["id"]
    assert (
        client.post(
            "/v1/community/stories", headers=alice.headers, json={**body, "title": "Lantern"}
        ).status_code
        == 200
    )

    # Anyone browses and reads (no key); the listing refreshes at once after the update.
    page = anonymous.get("/v1/community/stories?tag=river").json()
    assert page["total"] == 1 and page["items"][0]["title"] == "Lantern"
    assert anonymous.get("/v1/community/stories?tag=horror").json()["total"] == 0
    assert anonymous.get("/v1/community/stories?q=remembers&category=fantasy").json()["total"] == 1
    story_page = anonymous.get(f"/v1/community/stories/{listing}").json()
    assert story_page["chapters"][0]["content"].startswith("Chapter 1 opens")
    image_url = story_page["chapters"][0]["scenes"][0]["images"][0]["url"]
    r = anonymous.get(image_url)  # a published story's images are public, cached forever
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert anonymous.get(image_url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    # What was not published stays private: the other story's image, and its pages.
    other_image = client.get(f"/v1/images/{private.image_ids[0]}", headers=alice.headers).json()
    assert (
        anonymous.get(
            f"/media/{private.image_paths[0].relative_to(private.image_paths[0].parents[3])}"
        ).status_code
        == 404
    )
    assert other_image["id"]
    assert anonymous.get("/v1/community/stories/00000000-0000-0000-0000-000000000000").status_code == 404

    # Only admins feature.
    assert (
        client.patch(
            f"/v1/community/stories/{listing}", headers=alice.headers, json={"is_featured": True}
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/v1/community/stories/{listing}", headers=admin.headers, json={"is_featured": True}
        ).json()["is_featured"]
        is True
    )
    assert anonymous.get("/v1/community/stories?featured=true").json()["total"] == 1

    # Likes are once per user; counts exact; unlike takes one back.
    for caller in (bob, carol, bob, bob):
        r = client.post(f"/v1/community/stories/{listing}/likes", headers=caller.headers)
        assert r.status_code in (200, 201)
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["like_count"] == 2
    assert (
        client.delete(f"/v1/community/stories/{listing}/likes", headers=carol.headers).json()["like_count"]
        == 1
    )
    assert client.post(f"/v1/community/stories/{listing}/bookmarks", headers=carol.headers).status_code == 201
    assert client.post(f"/v1/community/stories/{listing}/bookmarks", headers=carol.headers).status_code == 200
    assert client.post(f"/v1/community/stories/{listing}/shares", headers=carol.headers).status_code == 201
    mine = client.get(f"/v1/community/stories/{listing}", headers=carol.headers).json()
    assert mine["bookmarked"] is True and mine["liked"] is False
    assert client.post(f"/v1/community/stories/{listing}/likes").status_code == 401

    # Comments: posted, listed publicly, deleted by their author or an admin only.
    r = client.post(
        f"/v1/community/stories/{listing}/comments", headers=bob.headers, json={"content": "Lovely!"}
    )
    assert r.status_code == 201 and r.json()["author"]
    comment_id = r.json()["id"]
    assert [
        c["content"] for c in anonymous.get(f"/v1/community/stories/{listing}/comments").json()["items"]
    ] == ["Lovely!"]
    assert client.delete(f"/v1/community/comments/{comment_id}", headers=carol.headers).status_code == 403
    assert client.delete(f"/v1/community/comments/{comment_id}", headers=bob.headers).status_code == 204
    r = client.post(
        f"/v1/community/stories/{listing}/comments", headers=carol.headers, json={"content": "x" * 2001}
    )
    assert r.status_code == 422

    # Views: one per viewer and day, written in a batch.
    for caller in (bob, bob, carol):
        client.get(f"/v1/community/stories/{listing}", headers=caller.headers)
    with app.state.api.store() as store:
        app.state.api.views.flush(store.conn)
        counts = store.conn.execute(
            "SELECT view_count, like_count FROM community_stories WHERE id = %s", (listing,)
        ).fetchone()
    # anonymous (1) + carol (earlier, with her key) + bob = 3 viewers today
    assert counts == {"view_count": 3, "like_count": 1}
    popular = anonymous.get("/v1/community/stories?sort=popular").json()
    assert popular["items"][0]["id"] == listing

    # Unpublishing: the pages are gone (404 without a key), the images private again, the listing too.
    assert client.delete(f"/v1/community/stories/{listing}", headers=bob.headers).status_code == 403
    assert client.delete(f"/v1/community/stories/{listing}", headers=alice.headers).status_code == 204
    assert anonymous.get(f"/v1/community/stories/{listing}").status_code == 404
    assert anonymous.get(image_url).status_code == 404
    assert anonymous.get("/v1/community/stories").json()["total"] == 0


def test_comment_spam_is_a_429_and_duplicate_likes_are_idempotent(client, alice, bob, stories):
    published, _ = stories
    listing = client.post(
        "/v1/community/stories", headers=alice.headers, json={"story_id": str(published.story_id)}
    ).json()["id"]
    url = f"/v1/community/stories/{listing}/comments"
    assert client.post(url, headers=bob.headers, json={"content": "first!"}).status_code == 201
    r = client.post(url, headers=bob.headers, json={"content": "first!"})
    assert r.status_code == 429 and "already posted" in r.json()["detail"]
    for i in range(4):
        assert client.post(url, headers=bob.headers, json={"content": f"comment {i}"}).status_code == 201
    r = client.post(url, headers=bob.headers, json={"content": "one too many"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert (
        client.post(url, headers=alice.headers, json={"content": "the author may still answer"}).status_code
        == 201
    )
    likes = {
        client.post(f"/v1/community/stories/{listing}/likes", headers=bob.headers).json()["like_count"]
        for _ in range(3)
    }
    assert likes == {1}


def test_public_styles_and_presets_are_browsable(client, alice, conn):
    conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url, status, is_public, download_count) VALUES "
        "(%s, 'ink', 'loras/ink.safetensors', 'ready', TRUE, 7), "
        "(%s, 'secret', 'loras/s.safetensors', 'ready', FALSE, 99)",
        (alice.user_id, alice.user_id),
    )
    conn.execute(
        "INSERT INTO generation_presets (user_id, name, provider, model_name, parameters, is_public, usage_count) "
        "VALUES (%s, 'moody', 'local', 'tiny', '{}', TRUE, 3), (%s, 'mine', 'local', 'tiny', '{}', FALSE, 9)",
        (alice.user_id, alice.user_id),
    )
    assert [lora["name"] for lora in client.get("/v1/community/loras").json()["items"]] == ["ink"]
    assert [p["name"] for p in client.get("/v1/community/presets").json()["items"]] == ["moody"]


def test_every_community_list_pages_with_the_signed_cursor(client, alice, bob, conn, stories):
    """Comments, public styles and presets (most used first, ties by age) and listings (newest and popular)
    page with `next_cursor`; every row comes once; a changed cursor, or one of another list, is a 400."""
    published, _ = stories
    listing = client.post(
        "/v1/community/stories", headers=alice.headers, json={"story_id": str(published.story_id)}
    ).json()["id"]
    for i in range(5):
        conn.execute(
            "INSERT INTO community_interactions (user_id, story_id, interaction_type, content, created_at) "
            "VALUES (%s, %s, 'comment', %s, NOW() - make_interval(secs => %s))",
            (bob.user_id, listing, f"c{i}", i),
        )
        conn.execute(
            "INSERT INTO lora_models (user_id, name, model_file_url, status, is_public, download_count) "
            "VALUES (%s, %s, 'loras/x.safetensors', 'ready', TRUE, %s)",
            (alice.user_id, f"l{i}", i % 2),
        )

    def walk(url, limit=2):
        seen, cursor = [], None
        while True:
            page = client.get(url, params={"limit": limit, **({"cursor": cursor} if cursor else {})}).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert [c["content"] for c in walk(f"/v1/community/stories/{listing}/comments")] == [
        f"c{i}" for i in range(5)
    ]
    loras = walk("/v1/community/loras")
    assert sorted(lo["name"] for lo in loras) == [f"l{i}" for i in range(5)]
    assert [lo["download_count"] for lo in loras] == [1, 1, 0, 0, 0]
    for sort in ("newest", "popular"):
        assert [x["id"] for x in walk(f"/v1/community/stories?sort={sort}", limit=1)] == [listing]
    cursor = client.get("/v1/community/loras", params={"limit": 2}).json()["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for url, params in (
        ("/v1/community/loras", {"cursor": tampered}),
        ("/v1/community/presets", {"cursor": cursor}),
        (f"/v1/community/stories/{listing}/comments", {"cursor": cursor}),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 400 and "cursor" in r.json()["detail"], (url, r.text)
