"""The control plane as a user runs it: `keys` and `api` as subprocesses, and the dashboard in a real
headless Chromium (Debian's `chromium` package) driven over the DevTools protocol."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from tests.support.browser import DevTools, _chromium
from tests.support.waiting import free_port, wait_for

CLI = [sys.executable, "-m", "enchant_worker.cli"]
# A smoke bound only ("about a second" on a quiet machine; 6-10 s seen under a load average of 8 on 2
# cores): that the API stays torch-free is asserted exactly by tests/unit/core/test_light_imports.py.
API_START_LIMIT_S = 30.0


def cli(env, *args, check=True):
    out = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"{args} failed ({out.returncode}): {out.stderr}")
    return out


def test_keys_create_list_revoke(cli_env, conn):
    created = cli(
        cli_env, "keys", "create", "--name", "web app", "--role", "user", "--email", "ann@example.org"
    )
    key = created.stdout.strip()
    assert key.startswith("ew_") and "shown only this once" in created.stderr
    assert key not in json.dumps([dict(r) for r in conn.execute("SELECT * FROM api_keys")], default=str)
    listing = cli(cli_env, "keys", "list").stdout
    assert key[:11] in listing and "active" in listing and key not in listing
    assert cli(cli_env, "keys", "revoke", key[:11]).stdout.startswith("revoked user key")
    assert "revoked" in cli(cli_env, "keys", "list").stdout
    again = cli(cli_env, "keys", "revoke", key[:11], check=False)
    assert again.returncode == 2 and "no active key" in again.stderr
    bad = cli(cli_env, "keys", "create", "--name", "x", "--role", "user", check=False)
    assert bad.returncode == 2 and "--email" in bad.stderr


@pytest.fixture
def api_server(cli_env):
    """`enchant-worker api` on a free port; yields (base URL, admin key, seconds to start)."""
    key = cli(cli_env, "keys", "create", "--name", "dashboard", "--role", "admin").stdout.strip()
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, "api", "--port", str(port), "--log-level", "WARNING"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"api exited: {proc.stderr.read()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30)
    yield base, key, time.monotonic() - started
    proc.terminate()
    proc.wait(timeout=10)


def test_api_serves_quickly_without_torch(api_server):
    base, key, start_s = api_server
    print(f"enchant-worker api answered /healthz {start_s:.2f}s after start")
    assert start_s < API_START_LIMIT_S, f"the API took {start_s:.2f}s to answer /healthz"
    r = httpx.post(f"{base}/v1/jobs", json={"job_type": "noop"}, headers={"X-API-Key": key})  # an admin key
    assert r.status_code == 201
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"


@pytest.fixture
def chromium(tmp_path):
    with _chromium(tmp_path / "chromium-profile") as page:
        yield page


@pytest.fixture
def offline_chromium(tmp_path):
    """Chromium as on a box without internet: every host but this one's loopback resolves to nothing and
    every other request goes to a proxy that is not there (loopback goes direct)."""
    with _chromium(
        tmp_path / "chromium-profile",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ) as page:  # loopback bypasses a proxy
        yield page


def test_dashboard_shows_live_numbers(api_server, chromium, conn):
    _watch_dashboard(chromium, *api_server[:2], conn)


def _watch_dashboard(page: DevTools, base: str, key: str, conn) -> None:
    page.call("Page.enable")
    page.call("Network.enable")
    page.call("Page.navigate", url=f"{base}/dashboard?refresh=1")

    def text(element_id):
        return page.evaluate(f"(document.getElementById({element_id!r}) || {{}}).textContent || null")

    # Signed in through the form (a POST; the key comes back as a cookie): the page shows the empty queue.
    wait_for(lambda: page.evaluate("!!document.querySelector('form input[name=key]')"), timeout=30, every=0.2)
    page.evaluate(
        f"document.querySelector('input[name=key]').value = {json.dumps(key)}; "
        "document.querySelector('form').submit()"
    )
    wait_for(lambda: text("total-pending") == "0", timeout=30, every=0.2)
    assert page.evaluate("location.search") == "?refresh=1"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: out of the page's scripts' reach
    sent = [e["params"]["request"] for e in page.events if e["method"] == "Network.requestWillBeSent"]
    assert any(r["method"] == "POST" and r["url"] == f"{base}/dashboard" for r in sent)
    assert not [r["url"] for r in sent if key in r["url"]]  # the key was in no address
    assert text("worker-count") == "0"
    # Jobs enqueued (as the web app would, straight into Postgres) show up without a reload.
    page.evaluate("window.__same_page = 1")
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop") for _ in range(3)])
    wait_for(lambda: text("total-pending") == "3", timeout=30, every=0.2)
    assert page.evaluate("window.__same_page") == 1
    # A worker picks one up and another fails: processing, failures and workers change live too.
    queue.register_worker(
        "gpu-0",
        host="box",
        pid=1,
        job_types=["noop"],
        device={"kind": "cuda", "name": "H100", "memory_total_mb": 80000},
        concurrency=1,
    )
    running, failing = queue.lease("gpu-0", ["noop"], limit=2)
    queue.fail(Lease(failing.id, failing.lease_token), "CUDA out of memory at step 3", attempt=1, retry=False)
    queue.extend([Lease(running.id, running.lease_token)], {running.id: {"percent": 55}})
    queue.worker_heartbeat("gpu-0", [running.id])
    wait_for(lambda: text("total-processing") == "1" and text("total-failed") == "1", timeout=30, every=0.2)
    assert text("total-pending") == "1" and text("worker-count") == "1"
    body = page.evaluate("document.body.innerText")
    assert "CUDA out of memory at step 3" in body and "55%" in body and "gpu-0" in body
    assert page.evaluate("window.__same_page") == 1  # all of it without reloading the page


OPERATIONS_SHOWN = "document.querySelectorAll('.opblock-summary-path').length"


def test_docs_render_without_internet(api_server, offline_chromium):
    """Swagger UI and ReDoc render every operation with no network but this server's, and nothing is
    requested from anywhere else."""
    base = api_server[0]
    page = offline_chromium
    page.call("Page.enable")
    page.call("Network.enable")
    page.call("Page.navigate", url=f"{base}/docs")
    wait_for(
        lambda: page.evaluate(OPERATIONS_SHOWN) > 25, timeout=30, every=0.2, what="Swagger UI's operations"
    )
    paths = page.evaluate("[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)")
    assert "/v2/jobs" in paths and "/healthz" in paths
    assert page.evaluate("document.querySelector('.info .title').textContent").startswith("Enchant Worker")

    page.call("Page.navigate", url=f"{base}/redoc")
    wait_for(
        lambda: page.evaluate("(document.querySelector('.api-content') || {}).innerText || ''").count(
            "/v2/jobs"
        ),
        timeout=30,
        every=0.2,
        what="ReDoc's operations",
    )
    page.evaluate("1")  # collects the events that came meanwhile
    sent = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in page.events
        if e["method"] == "Network.requestWillBeSent"
    }
    assert {f"{base}/docs-static/swagger-ui-bundle.js", f"{base}/docs-static/redoc.standalone.js"} <= set(
        sent.values()
    )
    # The ReDoc bundle asks for one outside file (the Redocly logo); the page's policy stops it in the
    # browser. Nothing else leaves this server, and nothing of it fails.
    failed = {
        e["params"]["requestId"]: e["params"] for e in page.events if e["method"] == "Network.loadingFailed"
    }
    outside = {i: u for i, u in sent.items() if not u.startswith((base, "data:", "blob:"))}
    assert all(failed.get(i, {}).get("blockedReason") == "csp" for i in outside), (outside, failed)
    assert not [sent.get(i) for i in failed if i not in outside]
