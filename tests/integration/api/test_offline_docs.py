"""/docs and /redoc work without internet: their pages name no outside address and every file they load
is served by the API itself (Swagger UI and ReDoc from the fastapi-offline package). The acceptance test
renders /docs in headless Chromium with every outside host unreachable."""

from __future__ import annotations

import re

import pytest

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
OUTSIDE = re.compile(r"(?:https?:)?//[^\s\"'<>]+")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_this_server(client, page):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert OUTSIDE.findall(r.text) == []  # no CDN, fonts or validator: nothing but this server's paths
    assets = ASSET.findall(r.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        got = client.get(asset)
        assert got.status_code == 200 and len(got.content) > 1000, asset
    spec = re.search(r"""(?:url:\s*'|spec-url=")([^'"]+)""", r.text).group(1)
    assert spec == "/openapi.json" and client.get(spec).status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_may_load_nothing_from_elsewhere(client, page):
    """The ReDoc bundle still asks for its sidebar logo on a CDN: the page's policy keeps the browser
    from fetching it (and anything else not from this server)."""
    policy = client.get(page).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "http" not in policy
    assert "content-security-policy" not in client.get("/healthz").headers


def test_swagger_ui_calls_no_validator(client):
    """Swagger UI sends the spec's address to an online validator unless told not to."""
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_docs_files_are_not_operations(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
