"""The dashboard's sign-in: the key travels in a form POST and comes back only as an HttpOnly, SameSite
cookie, never in an address (a Location header, a link, a query string)."""

from __future__ import annotations

import pytest


def _no_key_anywhere(response, key: str) -> None:
    for r in [*response.history, response]:
        assert key not in str(r.url) and key not in r.headers.get("location", "")
        assert key not in r.text


def test_the_sign_in_form_posts_the_key(client):
    r = client.get("/dashboard", params={"refresh": 7})
    assert r.status_code == 401 and r.headers["cache-control"] == "no-store"
    assert '<form method="post" action="/dashboard">' in r.text
    assert 'type="password" name="key"' in r.text and 'name="refresh" value="7"' in r.text


@pytest.mark.parametrize(
    "key, status, message",
    [
        ("ew_wrong", 401, "That key is unknown or revoked."),
        ("", 401, "Enter an admin API key."),
        ("caf\udce9", 401, "That key is unknown or revoked."),
    ],
)
def test_an_unknown_key_is_refused_with_the_form_again(client, key, status, message):
    r = client.post(
        "/dashboard",
        content=f"key={key}".encode("utf-8", "surrogateescape"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == status and message in r.text and "<form" in r.text
    assert "set-cookie" not in r.headers


def test_a_user_key_is_refused_with_a_clear_message(client, alice):
    r = client.post("/dashboard", data={"key": alice.key}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "That is a user key; the dashboard needs an admin key" in r.text
    _no_key_anywhere(r, alice.key)


def test_an_admin_key_sets_an_httponly_samesite_cookie_and_redirects(client, admin):
    r = client.post("/dashboard", data={"key": admin.key, "refresh": "5"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?refresh=5"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("enchant_key=") and "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age=" in cookie and "secure" not in cookie  # plain http here; https adds Secure
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and 'id="total-pending"' in page.text
    _no_key_anywhere(page, admin.key)
    assert client.get("/dashboard/panels").status_code == 200  # the cookie serves the page's refreshes


def test_over_https_the_cookie_is_secure(app, admin):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/dashboard", data={"key": admin.key}, follow_redirects=False)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


def test_a_key_in_the_address_signs_nobody_in(client, admin):
    r = client.get("/dashboard", params={"key": admin.key}, follow_redirects=False)
    assert r.status_code == 400 and "not accepted in the address" in r.text
    assert "set-cookie" not in r.headers and admin.key not in r.text


def test_a_user_cookie_sees_the_form_not_the_dashboard(client, alice):
    client.cookies.set("enchant_key", alice.key)
    r = client.get("/dashboard")
    assert r.status_code == 403 and "needs an admin key" in r.text and 'id="total-pending"' not in r.text
    client.cookies.clear()
