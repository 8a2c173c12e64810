"""Story collaboration (a v2 feature): invite, accept or decline, change the role, remove or leave;
who may do each, every write in edit_history, and every bad input a 4xx naming what is wrong."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

COLLAB = "/v2/stories/{story}/collaborators"


@pytest.fixture
def story(store, alice) -> str:
    return str(
        store.conn.execute(
            "INSERT INTO stories (user_id, title) VALUES (%s, 'Tale') RETURNING id", [alice.user_id]
        ).fetchone()["id"]
    )


def _url(story: str, collaborator: str | None = None, action: str | None = None) -> str:
    url = COLLAB.format(story=story)
    if collaborator:
        url += f"/{collaborator}"
    if action:
        url += f"/{action}"
    return url


def _invite(client, caller, story, invitee, role="contributor", **extra):
    return client.post(
        _url(story), json={"user_id": str(invitee.user_id), "role": role, **extra}, headers=caller.headers
    )


def _history(store, collaborator_id) -> list[dict]:
    return store.conn.execute(
        "SELECT entity_type, user_id, action_type, changes, comment FROM edit_history WHERE entity_id = %s "
        "ORDER BY created_at, id",
        [collaborator_id],
    ).fetchall()


def _loc(response) -> list:
    return response.json()["detail"][0]["loc"]


def test_the_whole_flow(client, store, story, alice, bob):
    # Invited: pending, invited by alice; bob can't read or write yet.
    r = _invite(client, alice, story, bob, role="editor", comment="welcome")
    assert r.status_code == 201, r.text
    invitation = r.json()
    cid = invitation["id"]
    assert invitation["status"] == "pending" and invitation["accepted_at"] is None
    assert invitation["invited_by"] == str(alice.user_id) and invitation["user_id"] == str(bob.user_id)
    assert invitation["permissions"] == {"read": True, "write": True, "admin": False}
    assert (
        client.patch(f"/v2/stories/{story}", json={"genre": "noir"}, headers=bob.headers).status_code == 403
    )
    assert client.get(f"/v2/stories/{story}", headers=bob.headers).status_code == 403
    # Alice sees the invitation in the list.
    listed = client.get(_url(story), headers=alice.headers).json()
    assert [c["id"] for c in listed] == [cid]

    # Accepted: an editor writes. Accepting again changes nothing.
    r = client.post(_url(story, cid, "accept"), headers=bob.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["accepted_at"] is not None
    again = client.post(_url(story, cid, "accept"), headers=bob.headers)
    assert again.status_code == 200 and again.json() == r.json()
    r = client.patch(f"/v2/stories/{story}", json={"genre": "noir"}, headers=bob.headers)
    assert r.status_code == 200 and r.json()["genre"] == "noir"

    # Demoted to viewer: reads, no longer writes.
    r = client.patch(_url(story, cid), json={"role": "viewer"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "viewer" and r.json()["permissions"] == {
        "read": True,
        "write": False,
        "admin": False,
    }
    assert client.get(f"/v2/stories/{story}", headers=bob.headers).status_code == 200
    assert client.patch(f"/v2/stories/{story}", json={"genre": "x"}, headers=bob.headers).status_code == 403
    # A grant of write on top of the viewer role lets him write again.
    r = client.patch(_url(story, cid), json={"permissions": {"write": True}}, headers=alice.headers)
    assert r.json()["permissions"] == {"read": True, "write": True, "admin": False}
    assert client.patch(f"/v2/stories/{story}", json={"genre": "y"}, headers=bob.headers).status_code == 200

    # Removed: no access at all.
    assert client.delete(_url(story, cid), headers=alice.headers).status_code == 204
    assert client.get(f"/v2/stories/{story}", headers=bob.headers).status_code == 403
    assert client.get(_url(story), headers=bob.headers).status_code == 403
    assert client.get(_url(story), headers=alice.headers).json() == []

    # Every write is in the edit history, with who made it.
    history = _history(store, cid)
    assert [(h["entity_type"], h["action_type"]) for h in history] == [
        ("story_collaborator", "create"),
        ("story_collaborator", "update"),
        ("story_collaborator", "update"),
        ("story_collaborator", "update"),
        ("story_collaborator", "delete"),
    ]
    create, accept, demote, grant, delete = history
    assert create["user_id"] == alice.user_id and create["comment"] == "welcome"
    assert create["changes"]["role"] == "editor" and create["changes"]["status"] == "pending"
    assert accept["user_id"] == bob.user_id and accept["changes"]["status"] == {
        "old": "pending",
        "new": "accepted",
    }
    assert demote["changes"]["role"] == {"old": "editor", "new": "viewer"}
    assert grant["changes"] == {
        "permissions": {
            "old": {"read": True, "write": False, "admin": False},
            "new": {"read": True, "write": True, "admin": False},
        }
    }
    assert delete["user_id"] == alice.user_id and delete["changes"]["user_id"] == str(bob.user_id)


def test_invite_by_email_decline_and_leave(client, store, story, alice, bob, make_user):
    r = client.post(_url(story), json={"email": "bob@example.org", "role": "viewer"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = client.post(_url(story, cid, "decline"), headers=bob.headers)
    assert r.status_code == 200 and r.json()["status"] == "declined" and r.json()["accepted_at"] is None
    assert client.post(_url(story, cid, "decline"), headers=bob.headers).status_code == 200  # idempotent
    r = client.post(_url(story, cid, "accept"), headers=bob.headers)
    assert r.status_code == 409 and "declined" in r.json()["detail"]
    assert client.get(f"/v2/stories/{story}", headers=bob.headers).status_code == 403
    assert [h["action_type"] for h in _history(store, cid)] == [
        "create",
        "update",
    ]  # the repeat recorded nothing

    # A collaborator leaves on their own.
    carol = make_user()
    cid = _invite(client, alice, story, carol).json()["id"]
    assert client.post(_url(story, cid, "accept"), headers=carol.headers).status_code == 200
    r = client.post(_url(story, cid, "decline"), headers=carol.headers)
    assert r.status_code == 409 and "DELETE" in r.json()["detail"]
    assert client.delete(_url(story, cid), headers=carol.headers).status_code == 204
    assert client.get(f"/v2/stories/{story}", headers=carol.headers).status_code == 403
    assert _history(store, cid)[-1]["comment"] == "left the story"


def test_inviting_twice_is_a_conflict_naming_the_invitation(client, story, alice, bob, admin):
    cid = _invite(client, alice, story, bob).json()["id"]
    for caller in (alice, admin):
        r = _invite(client, caller, story, bob, role="viewer")
        assert r.status_code == 409, r.text
        assert cid in r.json()["detail"] and "pending" in r.json()["detail"]
    r = client.post(_url(story), json={"email": "bob@example.org"}, headers=alice.headers)
    assert r.status_code == 409 and cid in r.json()["detail"]
    # Inviting the story's owner is a conflict too.
    r = _invite(client, admin, story, alice)
    assert r.status_code == 409 and "owns" in r.json()["detail"]


def test_admin_collaborators_and_the_owner_role(client, story, alice, bob, make_user, admin):
    carol, dave, erin = make_user(), make_user(), make_user()
    # Bob is a contributor granted admin: he invites and manages, but cannot grant the owner role.
    cid = _invite(client, alice, story, bob, permissions={"admin": True}).json()["id"]
    assert client.post(_url(story, cid, "accept"), headers=bob.headers).status_code == 200
    r = _invite(client, bob, story, carol, role="viewer")
    assert r.status_code == 201 and r.json()["invited_by"] == str(bob.user_id)
    carol_id = r.json()["id"]
    assert (
        client.patch(_url(story, carol_id), json={"role": "editor"}, headers=bob.headers).status_code == 200
    )
    r = _invite(client, bob, story, dave, role="owner")
    assert r.status_code == 403 and "owner role" in r.json()["detail"]
    r = client.patch(_url(story, carol_id), json={"role": "owner"}, headers=bob.headers)
    assert r.status_code == 403
    # The story's owner (and an admin key) may.
    r = _invite(client, alice, story, dave, role="owner")
    assert r.status_code == 201 and r.json()["permissions"] == {"read": True, "write": True, "admin": True}
    dave_id = r.json()["id"]
    assert _invite(client, admin, story, erin, role="owner").status_code == 201
    # An owner-role collaborator is changed or removed only by the story's owner.
    assert client.patch(_url(story, dave_id), json={"role": "viewer"}, headers=bob.headers).status_code == 403
    assert client.delete(_url(story, dave_id), headers=bob.headers).status_code == 403
    assert client.delete(_url(story, carol_id), headers=bob.headers).status_code == 204
    assert client.delete(_url(story, dave_id), headers=alice.headers).status_code == 204
    # Once accepted, an owner-role collaborator administers the story.
    dave_id = _invite(client, alice, story, dave, role="owner").json()["id"]
    assert client.post(_url(story, dave_id, "accept"), headers=dave.headers).status_code == 200
    assert _invite(client, dave, story, carol).status_code == 201


def test_who_may_not(client, story, alice, bob, make_user, admin):
    carol, stranger = make_user(), make_user()
    cid = _invite(client, alice, story, bob).json()["id"]
    # Only the invitee answers: not the owner, not an admin key, not a stranger.
    for caller in (alice, admin, stranger, carol):
        for action in ("accept", "decline"):
            r = client.post(_url(story, cid, action), headers=caller.headers)
            assert r.status_code == 403 and "invited user" in r.json()["detail"], (action, r.text)
    # A pending invitee administers nothing; a stranger neither; an accepted contributor neither.
    for caller in (bob, stranger):
        assert _invite(client, caller, story, carol).status_code == 403
        assert (
            client.patch(_url(story, cid), json={"role": "viewer"}, headers=caller.headers).status_code == 403
        )
    assert client.post(_url(story, cid, "accept"), headers=bob.headers).status_code == 200
    assert _invite(client, bob, story, carol).status_code == 403
    assert client.patch(_url(story, cid), json={"role": "editor"}, headers=bob.headers).status_code == 403
    carol_id = _invite(client, alice, story, carol).json()["id"]
    assert client.delete(_url(story, carol_id), headers=bob.headers).status_code == 403
    assert client.delete(_url(story, carol_id), headers=stranger.headers).status_code == 403
    # Without a key: 401 everywhere.
    for method, url in (
        ("POST", _url(story)),
        ("POST", _url(story, cid, "accept")),
        ("POST", _url(story, cid, "decline")),
        ("PATCH", _url(story, cid)),
        ("DELETE", _url(story, cid)),
    ):
        assert client.request(method, url, json={"role": "viewer"}).status_code == 401


def test_unknown_ids_are_404(client, store, story, alice, bob):
    cid = _invite(client, alice, story, bob).json()["id"]
    nobody, other_story = str(uuid.uuid4()), str(uuid.uuid4())
    r = client.post(_url(story), json={"user_id": nobody}, headers=alice.headers)
    assert r.status_code == 404 and nobody in r.json()["detail"] and "user_id" in r.json()["detail"]
    r = client.post(_url(story), json={"email": "nobody@example.org"}, headers=alice.headers)
    assert r.status_code == 404 and "nobody@example.org" in r.json()["detail"]
    assert _invite(client, alice, other_story, bob).status_code == 404
    for method, path in (("POST", "accept"), ("POST", "decline"), ("PATCH", None), ("DELETE", None)):
        body = {"role": "viewer"} if method == "PATCH" else None
        for url in (_url(story, nobody, path), _url(other_story, cid, path)):
            r = client.request(method, url, json=body, headers=bob.headers if path else alice.headers)
            assert r.status_code == 404, (method, url, r.text)
    # A collaborator id of another story is unknown on this one.
    second = str(
        store.conn.execute(
            "INSERT INTO stories (user_id, title) VALUES (%s, 'Other') RETURNING id", [alice.user_id]
        ).fetchone()["id"]
    )
    r = client.patch(_url(second, cid), json={"role": "viewer"}, headers=alice.headers)
    assert r.status_code == 404 and cid in r.json()["detail"]
    # v1 has no collaboration: a 404 naming v2.
    r = client.post(
        f"/v1/stories/{story}/collaborators", json={"user_id": str(bob.user_id)}, headers=alice.headers
    )
    assert r.status_code == 404 and "v2" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ["body", "user_id"]),
        (
            {"user_id": "00000000-0000-0000-0000-000000000001", "email": "bob@example.org"},
            ["body", "user_id"],
        ),
        ({"user_id": "not-a-uuid"}, ["body", "user_id"]),
        ({"email": ""}, ["body", "email"]),
        ({"email": "a\x00b@example.org"}, ["body", "email"]),
        ({"email": "bob@example.org", "role": "boss"}, ["body", "role"]),
        ({"email": "bob@example.org", "role": None}, ["body", "role"]),
        ({"email": "bob@example.org", "permissions": {"fly": True}}, ["body", "permissions", "fly"]),
        (
            {"email": "bob@example.org", "permissions": {"write": "yes please"}},
            ["body", "permissions", "write"],
        ),
        ({"email": "bob@example.org", "permissions": []}, ["body", "permissions"]),
        (
            {"email": "bob@example.org", "role": "editor", "permissions": {"write": False}},
            ["body", "permissions", "write"],
        ),
        ({"email": "bob@example.org", "comment": "x" * 2001}, ["body", "comment"]),
        ({"email": "bob@example.org", "status": "accepted"}, ["body", "status"]),
        (
            {"email": "bob@example.org", "invited_by": "00000000-0000-0000-0000-000000000001"},
            ["body", "invited_by"],
        ),
    ],
)
def test_bad_invitations_are_422_naming_the_field(client, story, alice, bob, body, field):
    r = client.post(_url(story), json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert _loc(r) == field, r.json()


def test_bad_bodies_and_ids(client, story, alice, bob):
    cid = _invite(client, alice, story, bob).json()["id"]
    for body, field in (
        ({"role": "boss"}, ["body", "role"]),
        ({"role": None}, ["body", "role"]),
        ({"permissions": {"admin": 1.5}}, ["body", "permissions", "admin"]),
        ({"permissions": {"read": False}}, ["body", "permissions", "read"]),
        ({"user_id": str(bob.user_id)}, ["body", "user_id"]),
        ({"comment": "\x00"}, ["body", "comment"]),
    ):
        r = client.patch(_url(story, cid), json=body, headers=alice.headers)
        assert r.status_code == 422, (body, r.text)
        assert _loc(r) == field, r.json()
    for method, path in (("POST", "accept"), ("PATCH", None), ("DELETE", None)):
        r = client.request(method, _url(story, "not-a-uuid", path), json={}, headers=alice.headers)
        assert r.status_code == 422 and _loc(r) == ["path", "collaborator_id"], r.text
    r = client.post(
        "/v2/stories/not-a-uuid/collaborators", json={"email": "bob@example.org"}, headers=alice.headers
    )
    assert r.status_code == 422 and _loc(r) == ["path", "story_id"]
    r = client.post(
        _url(story), content=b"{not json", headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    # A body that changes nothing records nothing.
    assert client.patch(_url(story, cid), json={}, headers=alice.headers).status_code == 200
    assert (
        client.patch(
            _url(story, cid),
            json={"role": "contributor", "permissions": {"write": True}},
            headers=alice.headers,
        ).status_code
        == 200
    )


def test_a_grant_survives_role_changes_and_can_be_withdrawn(client, store, story, alice, bob):
    cid = _invite(client, alice, story, bob, role="viewer", permissions={"admin": True}).json()["id"]
    assert client.get(_url(story), headers=alice.headers).json()[0]["permissions"] == {
        "read": True,
        "write": False,
        "admin": True,
    }
    r = client.patch(_url(story, cid), json={"role": "editor"}, headers=alice.headers)
    assert r.json()["permissions"] == {"read": True, "write": True, "admin": True}
    r = client.patch(
        _url(story, cid), json={"role": "viewer", "permissions": {"admin": False}}, headers=alice.headers
    )
    assert r.json()["permissions"] == {"read": True, "write": False, "admin": False}
    # Nothing changed: no history entry for it.
    before = len(_history(store, cid))
    assert client.patch(_url(story, cid), json={"role": "viewer"}, headers=alice.headers).status_code == 200
    assert len(_history(store, cid)) == before


def test_concurrent_invitations_of_one_user_make_one_row(client, store, story, alice, bob):
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: _invite(client, alice, story, bob).status_code, range(8)))
    assert codes == [201] + [409] * 7
    assert (
        store.conn.execute(
            "SELECT count(*) AS n FROM story_collaborators WHERE story_id = %s", [story]
        ).fetchone()["n"]
        == 1
    )


def test_openapi_documents_the_routes(client, admin):
    paths = client.get("/openapi.json").json()["paths"]
    base = "/v2/stories/{story_id}/collaborators"
    assert set(paths[base]) == {"get", "post"}
    assert "409" in paths[base]["post"]["responses"] and "422" in paths[base]["post"]["responses"]
    assert set(paths[base + "/{collaborator_id}"]) == {"patch", "delete"}
    assert (
        "post" in paths[base + "/{collaborator_id}/accept"]
        and "post" in paths[base + "/{collaborator_id}/decline"]
    )
    # v1 has no collaboration (its story routes are ingest, settings and exports).
    assert not any(p.startswith("/v1/stories") and "collaborators" in p for p in paths)
