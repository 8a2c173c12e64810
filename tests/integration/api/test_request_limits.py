"""Request limits: a JSON body above ENCHANT_REQUEST_MAX_JSON_BYTES is a 413 naming the limit (by
Content-Length or as a chunked body grows); metadata nested too deep or holding text Postgres cannot
store is a 422 naming the field, never a 500."""

from __future__ import annotations

import json

import pytest

from enchant_worker.jobspecs.limits import MAX_IDEMPOTENCY_KEY_CHARS, MAX_JSON_DEPTH

MIB = 2**20


def _two_mib_job() -> bytes:
    return json.dumps({"job_type": "noop", "metadata": {"filler": "x" * (2 * MIB)}}).encode()


def _refused_as_too_large(r) -> None:
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert f"limit of {MIB} bytes (1 MiB" in detail and "ENCHANT_REQUEST_MAX_JSON_BYTES" in detail


def test_a_2_mib_json_body_is_413(client, alice, conn):
    r = client.post(
        "/v2/jobs", content=_two_mib_job(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    _refused_as_too_large(r)
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0


def test_a_2_mib_chunked_json_body_is_413(client, alice, conn):
    body = _two_mib_job()

    def chunks():  # no Content-Length: the limit is enforced as the body arrives
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    r = client.post(
        "/v2/jobs", content=chunks(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    _refused_as_too_large(r)
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0


def test_the_limit_covers_every_json_route(client, alice):
    story = "00000000-0000-0000-0000-000000000001"
    _refused_as_too_large(
        client.patch(f"/v2/stories/{story}", json={"description": "x" * (2 * MIB)}, headers=alice.headers)
    )
    _refused_as_too_large(
        client.put("/v1/users/me/preferences", json={"a": "x" * (2 * MIB)}, headers=alice.headers)
    )


def test_a_body_under_the_limit_is_accepted(client, alice):
    r = client.post(
        "/v2/jobs",
        json={
            "job_type": "generate_image",
            "metadata": {"prompt": "x " * 1900, "negative_prompt": "y" * 3900},
        },
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text


def test_the_limit_is_a_setting(settings, db_url):
    from fastapi.testclient import TestClient

    from enchant_worker.api import create_app
    from enchant_worker.handlers import default_registry

    small = settings.model_copy(update={"request_max_json_bytes": 4096})
    with TestClient(create_app(small, database_url=db_url, job_types=default_registry(plugins=False))) as c:
        r = c.post("/v2/jobs", json={"job_type": "noop", "metadata": {"a": "x" * 5000}})
    assert r.status_code == 413 and "limit of 4096 bytes" in r.json()["detail"]


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _error(r) -> dict:
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    return error


def test_metadata_nested_deeper_than_the_limit_is_422(client, alice):
    # At the limit the metadata reaches the job type's spec (which has no such field); one deeper, it does not.
    at_limit = _error(
        client.post(
            "/v2/jobs",
            json={"job_type": "generate_image", "metadata": _nested(MAX_JSON_DEPTH)},
            headers=alice.headers,
        )
    )
    assert "nested deeper" not in at_limit["msg"]
    error = _error(
        client.post(
            "/v2/jobs",
            json={"job_type": "generate_image", "metadata": _nested(MAX_JSON_DEPTH + 1)},
            headers=alice.headers,
        )
    )
    assert error["loc"] == ["body", "metadata"]
    assert error["msg"].startswith(
        "Value error, metadata" + ".a" * MAX_JSON_DEPTH + ": nested deeper than the "
        f"limit of {MAX_JSON_DEPTH} levels"
    )


def test_json_too_deep_to_parse_is_422_not_500(client, alice):
    text = '{"job_type": "noop", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"
    error = _error(
        client.post(
            "/v2/jobs", content=text.encode(), headers={**alice.headers, "Content-Type": "application/json"}
        )
    )
    assert error["loc"] == ["body"] and f"limit of {MAX_JSON_DEPTH} levels" in error["msg"]


@pytest.mark.parametrize(
    "metadata_json, path",
    [
        ('{"a": "caf\\udce9"}', "metadata.a"),
        ('{"scenes": [{"title": "\\ud800"}]}', "metadata.scenes[0].title"),
        ('{"\\udce9": 1}', 'metadata["\\udce9"]'),
    ],
)
def test_a_lone_surrogate_in_metadata_is_422_naming_the_field(client, alice, conn, metadata_json, path):
    body = '{"job_type": "noop", "metadata": ' + metadata_json + "}"
    error = _error(
        client.post(
            "/v2/jobs", content=body.encode(), headers={**alice.headers, "Content-Type": "application/json"}
        )
    )
    assert error["loc"] == ["body", "metadata"] and f"{path}: text contains a lone surrogate" in error["msg"]
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0


def test_a_lone_surrogate_in_the_idempotency_key_is_422(client, alice):
    body = '{"job_type": "noop", "idempotency_key": "k\\udce9"}'  # pydantic refuses it for str fields
    error = _error(
        client.post(
            "/v2/jobs", content=body.encode(), headers={**alice.headers, "Content-Type": "application/json"}
        )
    )
    assert error["loc"] == ["body", "idempotency_key"] and "unicode" in error["msg"]


def test_long_strings_and_idempotency_keys_are_422(client, alice):
    error = _error(
        client.post(
            "/v2/jobs", json={"job_type": "noop", "metadata": {"a": "x" * 70_000}}, headers=alice.headers
        )
    )
    assert "metadata.a: 70000 characters, above the limit of 65536" in error["msg"]
    error = _error(
        client.post(
            "/v2/jobs", json={"job_type": "noop", "idempotency_key": "k" * 9000}, headers=alice.headers
        )
    )
    assert error["loc"] == ["body", "idempotency_key"] and str(MAX_IDEMPOTENCY_KEY_CHARS) in error["msg"]


def test_a_lone_surrogate_elsewhere_is_422_too(client, alice):
    """Other JSON the API stores (preset parameters, preferences) is held to the same storable text."""
    preset = '{"name": "p", "model_name": "tiny", "parameters": {"sampler": "\\udce9"}}'
    error = _error(
        client.post(
            "/v1/presets",
            content=preset.encode(),
            headers={**alice.headers, "Content-Type": "application/json"},
        )
    )
    assert error["loc"] == ["body", "parameters"] and "lone surrogate" in error["msg"]
    r = client.put(
        "/v1/users/me/preferences",
        content=b'{"extra": {"a": "\\udce9"}}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "lone surrogate" in r.text
