"""Analytics events through a real `enchant-worker api` (uvicorn): the client address is the TCP peer
unless ENCHANT_TRUSTED_PROXIES says the peer is a proxy; uvicorn's own proxy-header handling is off, so a
forged X-Forwarded-For sent from loopback is not taken as the client either."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.support.waiting import free_port, wait_for

CLI = [sys.executable, "-m", "enchant_worker.cli"]


def _user_key(env, email: str) -> str:
    out = subprocess.run(
        [*CLI, "keys", "create", "--name", "reader", "--role", "user", "--email", email],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _serve(env, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*CLI, "api", "--port", str(port), "--log-level", "WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up():
        assert proc.poll() is None, "the api exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30)
    return proc


@pytest.mark.parametrize(("trusted", "stored"), [(None, "127.0.0.1"), ('["127.0.0.1/32"]', "198.51.100.7")])
def test_forwarded_for_counts_only_from_a_trusted_proxy(cli_env, conn, trusted, stored):
    key = _user_key(cli_env, "reader@example.org")
    user = conn.execute("SELECT id FROM users WHERE email = 'reader@example.org'").fetchone()["id"]
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, 'S') RETURNING id", (user,)
    ).fetchone()["id"]
    env = {**cli_env, **({"ENCHANT_TRUSTED_PROXIES": trusted} if trusted else {})}
    port = free_port()
    proc = _serve(env, port)
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/events",
            headers={
                "Authorization": f"Bearer {key}",
                "X-Forwarded-For": "6.6.6.6, 198.51.100.7",
                "User-Agent": "reader/2",
            },
            json={"events": [{"event_type": "story_view", "event_data": {"story_id": str(story)}}]},
        )
        assert r.status_code == 202, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    row = conn.execute("SELECT host(ip_address) AS ip, user_agent FROM user_analytics_events").fetchone()
    assert row == {"ip": stored, "user_agent": "reader/2"}
