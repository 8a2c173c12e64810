"""Version rules: features per version, unknown versions, deprecation headers, sunset."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.api.versions import API_VERSIONS, VersionInfo, validate_api_version
from enchant_worker.handlers import default_registry
from enchant_worker.worker.registry import Handler


def test_versions_route_matches_the_seed(client, alice):
    body = client.get("/versions", headers=alice.headers).json()
    assert [v["version"] for v in body] == ["v1", "v2"]
    assert body[0]["supported_features"] == ["basic_generation", "scene_extraction"]
    assert body[1]["supported_features"] == [
        "basic_generation",
        "scene_extraction",
        "lora_training",
        "collaboration",
    ]
    assert all(v["valid"] and not v["deprecated"] and v["sunset_date"] is None for v in body)


def test_a_feature_outside_the_version_is_a_404_naming_the_version_that_has_it(client, admin):
    for method, path in [
        ("GET", "/v1/loras"),
        ("POST", "/v1/loras/00000000-0000-0000-0000-000000000000/publish"),
        ("GET", "/v1/stories/00000000-0000-0000-0000-000000000000/collaborators"),
    ]:
        r = client.request(method, path, headers=admin.headers)
        assert r.status_code == 404 and "/v2" in r.json()["detail"], r.text
    r = client.post("/v1/jobs", json={"job_type": "train_lora"}, headers=admin.headers)
    assert r.status_code == 404 and "lora_training" in r.json()["detail"] and "/v2" in r.json()["detail"]


def test_unknown_version_lists_the_supported_ones(client, admin):
    for path in ("/v3/jobs", "/v0", "/v17/loras/x"):
        r = client.get(path, headers=admin.headers)
        assert r.status_code == 404 and "v1, v2" in r.json()["detail"], path
    r = client.get("/nowhere", headers=admin.headers)
    assert r.status_code == 404 and "no route" in r.json()["detail"]


def test_validate_api_version_is_the_seeds():
    assert validate_api_version("v1") and validate_api_version("v2") and not validate_api_version("v3")
    assert not validate_api_version("v1", {"v1": VersionInfo(deprecated=True)})


def _app_with(settings, db_url, table) -> TestClient:
    return TestClient(
        create_app(settings, database_url=db_url, job_types=default_registry(plugins=False), versions=table)
    )


def test_deprecated_version_adds_deprecation_and_sunset_headers(settings, db_url, admin):
    sunset = date.today() + timedelta(days=90)
    table = {**API_VERSIONS, "v1": VersionInfo(True, sunset, API_VERSIONS["v1"].supported_features)}
    with _app_with(settings, db_url, table) as client:
        r = client.get("/v1/jobs", headers=admin.headers)
        assert r.status_code == 200
        assert r.headers["deprecation"] == "true"
        assert r.headers["sunset"].endswith("00:00:00 GMT") and str(sunset.year) in r.headers["sunset"]
        assert 'rel="successor-version"' in r.headers["link"]
        assert "deprecation" in client.get("/v1/nothing", headers=admin.headers).headers  # errors too
        assert "deprecation" not in client.get("/v2/jobs", headers=admin.headers).headers
        assert client.get("/versions", headers=admin.headers).json()[0]["valid"] is False


def test_version_past_its_sunset_is_gone(settings, db_url, admin):
    table = {**API_VERSIONS, "v1": VersionInfo(True, date.today() - timedelta(days=1), ("basic_generation",))}
    with _app_with(settings, db_url, table) as client:
        r = client.get("/v1/jobs", headers=admin.headers)
        assert r.status_code == 410 and "/v2" in r.json()["detail"]
        assert client.get("/v2/jobs", headers=admin.headers).status_code == 200


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_openapi_lists_each_version_once(client, version):
    paths = client.get("/openapi.json").json()["paths"]
    assert f"/{version}/jobs" in paths
    assert ("/v1/loras" in paths) is False and "/v2/loras" in paths


def test_job_creation_uses_the_registry_given(settings, db_url, admin, make_user):
    """A plugin's job type (admin-only) is validated by its handler's `validate`."""

    def validate(metadata):
        from enchant_worker.errors import InvalidJob

        if "story_id" not in metadata:
            raise InvalidJob("story_id: required")

    registry = default_registry(plugins=False)
    registry.register(Handler("plugin_report", lambda ctx: None, validate=validate))
    with TestClient(create_app(settings, database_url=db_url, job_types=registry)) as client:
        r = client.post("/v1/jobs", json={"job_type": "plugin_report", "metadata": {}}, headers=admin.headers)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "metadata", "story_id"]
        r = client.post(
            "/v1/jobs",
            json={"job_type": "plugin_report", "metadata": {"story_id": "x"}},
            headers=admin.headers,
        )
        assert r.status_code == 201
        user = make_user()
        r = client.post(
            "/v1/jobs",
            json={"job_type": "plugin_report", "metadata": {"story_id": "x"}},
            headers=user.headers,
        )
        assert r.status_code == 403 and r.json()["field"] == "job_type"
