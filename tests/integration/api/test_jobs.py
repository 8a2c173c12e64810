"""Jobs end to end: create (validated per type), get, list with signed cursors, cancel, retry, priority."""

from __future__ import annotations

import uuid

from enchant_worker.queue import JobQueue, Lease


def test_create_get_and_list(client, admin):
    r = client.post(
        "/v1/jobs",
        json={"job_type": "noop", "metadata": {"seconds": 0}, "priority": 2},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "pending" and job["priority"] == 2 and job["metadata"] == {"seconds": 0}
    assert client.get(f"/v2/jobs/{job['id']}", headers=admin.headers).json()["id"] == job["id"]
    listed = client.get(
        "/v1/jobs", params={"status": "pending", "job_type": "noop"}, headers=admin.headers
    ).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["next_cursor"] is None


def test_idempotency_key_gives_the_same_job(client, alice):
    body = {"job_type": "generate_image", "metadata": {"prompt": "a castle"}, "idempotency_key": "scene-42"}
    first = client.post("/v1/jobs", json=body, headers=alice.headers).json()
    second = client.post("/v1/jobs", json=body, headers=alice.headers).json()
    assert first["id"] == second["id"] and first["user_id"] == str(alice.user_id)


def test_metadata_validated_by_the_handler_names_the_field(client, admin):
    r = client.post(
        "/v1/jobs", json={"job_type": "noop", "metadata": {"seconds": "soon"}}, headers=admin.headers
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "metadata", "seconds"]
    assert "seconds" in r.json()["detail"][0]["msg"]


def test_schema_errors_name_the_field(client, admin):
    cases = [
        ({"job_type": "noop", "priority": -1}, "priority"),
        ({"metadata": {}}, "job_type"),
        ({"job_type": "noop", "metadata": []}, "metadata"),
        ({"job_type": "noop", "extra": 1}, "extra"),
        ({"job_type": "noop", "max_attempts": 0}, "max_attempts"),
        ({"job_type": "noop", "metadata": {"a": "nul\u0000"}}, "metadata"),
    ]
    for body, field in cases:
        r = client.post("/v1/jobs", json=body, headers=admin.headers)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["detail"][0]["loc"], (body, r.json())


def test_unknown_job_type_lists_the_known_ones(client, admin):
    r = client.post("/v1/jobs", json={"job_type": "paint_house"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "job_type"]
    assert "noop" in r.json()["detail"][0]["msg"]


def test_entity_type_and_id_go_together(client, admin):
    r = client.post("/v1/jobs", json={"job_type": "noop", "entity_type": "scene"}, headers=admin.headers)
    assert r.status_code == 422 and "entity_id" in r.json()["detail"][0]["loc"]


def test_unknown_and_malformed_ids(client, admin):
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/jobs/{missing}"),
        ("POST", f"/v1/jobs/{missing}/cancel"),
        ("POST", f"/v1/jobs/{missing}/retry"),
    ]:
        r = client.request(method, path, headers=admin.headers)
        assert r.status_code == 404 and str(missing) in r.json()["detail"]
    assert client.patch(f"/v1/jobs/{missing}", json={"priority": 1}, headers=admin.headers).status_code == 404
    assert client.get("/v1/jobs/not-a-uuid", headers=admin.headers).status_code == 422


def test_cursor_pagination_walks_every_job_once(client, admin):
    ids = {
        client.post("/v1/jobs", json={"job_type": "noop"}, headers=admin.headers).json()["id"]
        for _ in range(7)
    }
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params, headers=admin.headers).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == ids


def test_tampered_cursor_is_400(client, admin):
    for _ in range(3):
        client.post("/v1/jobs", json={"job_type": "noop"}, headers=admin.headers)
    cursor = client.get("/v1/jobs", params={"limit": 1}, headers=admin.headers).json()["next_cursor"]
    payload, mac = cursor.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for bad in (f"{flipped}.{mac}", "garbage", f"{payload}.", "a.b.c", cursor + "x"):
        r = client.get("/v1/jobs", params={"limit": 1, "cursor": bad}, headers=admin.headers)
        assert r.status_code == 400 and "cursor" in r.json()["detail"], bad
    # A cursor is bound to its filters.
    r = client.get(
        "/v1/jobs", params={"limit": 1, "cursor": cursor, "status": "failed"}, headers=admin.headers
    )
    assert r.status_code == 400


def test_cancel_retry_and_priority(client, admin, conn):
    job_id = client.post("/v1/jobs", json={"job_type": "noop"}, headers=admin.headers).json()["id"]
    r = client.patch(f"/v1/jobs/{job_id}", json={"priority": 0}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["priority"] == 0
    assert (
        client.patch(f"/v1/jobs/{job_id}", json={"priority": 99999}, headers=admin.headers).status_code == 422
    )
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    assert client.patch(f"/v1/jobs/{job_id}", json={"priority": 1}, headers=admin.headers).status_code == 409
    r = client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert client.post(f"/v1/jobs/{job_id}/retry", headers=admin.headers).status_code == 409
    # A running job is asked to stop.
    queue = JobQueue(conn)
    [leased] = queue.lease("w1", ["noop"])
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "processing"
    assert client.get(f"/v1/jobs/{job_id}", headers=admin.headers).json()["cancel_requested"] is True
    queue.finish_cancelled(Lease(leased.id, leased.lease_token))
