"""Remote providers against a second instance of this server (its own database, API on 127.0.0.1 and
worker), started by the test: `a1111` and `openai`, a provider that is down (fallback), one that is slow
(timeout, cancel), and bad answers from a misbehaving server (garbage, HTML, truncated PNG, endless body)."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.db.connection import Database
from enchant_worker.errors import ConfigurationError
from enchant_worker.handlers import default_registry
from enchant_worker.intake import JobRequest, submit
from enchant_worker.intake.actor import SYSTEM, Actor
from enchant_worker.providers.base import GenerationRequest
from enchant_worker.providers.config import check_providers
from enchant_worker.providers.http import ProviderError
from enchant_worker.providers.remote import A1111Provider, OpenAIProvider
from enchant_worker.queue import JobQueue
from tests.conftest import _fresh_database
from tests.support.http_server import ServerThread, free_port
from tests.support.workers import WorkerThreads

KEY_ENV = "ENCHANT_TEST_REMOTE_KEY"
SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 77}


@pytest.fixture
def remote(admin_url, template_db, gen_settings, tmp_path, monkeypatch):
    """A second Enchant Worker: its own database, API and worker; its user key in KEY_ENV."""
    gen = _fresh_database(admin_url, template_db)
    url = next(gen)
    settings = gen_settings.model_copy(update={"database_url": url, "home": tmp_path / "remote-home"})
    db = Database(url)
    with db.connection() as conn:
        store = Store(conn)
        key = create_key(store, name="remote", role="user", user_id=store.ensure_user("remote@example.org"))[
            0
        ]
    monkeypatch.setenv(KEY_ENV, key)
    workers = WorkerThreads(db, settings)
    workers.start(types=["generate_image"], poll_interval_s=0.05)
    app = create_app(settings, database_url=url, job_types=default_registry(plugins=False))
    with ServerThread(app) as server:
        server.db = db
        yield server
    workers.stop_all(15)
    next(gen, None)


@pytest.fixture
def local_side(db, gen_settings, remote, tmp_path):
    """This instance, with providers.toml naming the remote one several ways."""
    closed = free_port()
    config = tmp_path / "providers.toml"
    config.write_text(f"""
[providers.studio]
type = "a1111"
url = "{remote.url}"
api_key_env = "{KEY_ENV}"
cost_per_image = 0.002

[providers.compat]
type = "openai"
url = "{remote.url}/openai/v1"
api_key_env = "{KEY_ENV}"
model = "tiny-sd"
cost_per_image = 0.01

[providers.down]
type = "a1111"
url = "http://127.0.0.1:{closed}"
retries = 0

[providers.slow]
type = "a1111"
url = "{remote.url}"
api_key_env = "{KEY_ENV}"
timeout_s = 1
retries = 0

[roles]
stability = "down"
midjourney = "studio"
""")
    settings = gen_settings.model_copy(update={"providers_file": config})
    workers = WorkerThreads(db, settings)
    workers.start(types=["generate_image"], poll_interval_s=0.05)
    yield settings
    workers.stop_all(15)


def enqueue(db, settings, metadata, attempts=1):
    with db.connection() as conn:
        return submit(
            conn, Actor(None, SYSTEM), JobRequest("generate_image", metadata, max_attempts=attempts), settings
        )


def finished(db, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connection() as conn:
            job = JobQueue(conn).get(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def png_pixels(settings, job):
    path = settings.storage / job.result["images"][0]["path"]
    return np.asarray(Image.open(path).convert("RGB"))


def test_a1111_and_openai_providers_against_a_second_instance(db, local_side, remote):
    here = finished(
        db, enqueue(db, local_side, {"prompt": "a mill by a river", "provider": "local", **SMALL})
    )
    there = finished(
        db, enqueue(db, local_side, {"prompt": "a mill by a river", "provider": "studio", **SMALL})
    )
    assert there.status == "completed", there.error_message
    assert there.result["provider"] == "studio" and there.result["cost"] == 0.002
    assert there.result["model"] == "tiny-sd" and there.result["seeds"] == [77]
    # the same model, seed and settings on the other instance: the same pixels
    assert (png_pixels(local_side, here) == png_pixels(local_side, there)).all()
    assert KEY_ENV not in json.dumps(there.result) and "ew_" not in json.dumps(there.result)
    with remote.db.connection() as conn:  # the remote instance ran it as a job of its own
        assert (
            conn.execute("SELECT count(*) AS n FROM processing_jobs WHERE status = 'completed'").fetchone()[
                "n"
            ]
            == 1
        )
    oai = finished(
        db, enqueue(db, local_side, {"prompt": "a mill", "provider": "compat", "count": 2, **SMALL})
    )
    assert oai.status == "completed", oai.error_message
    assert (
        oai.result["provider"] == "compat" and len(oai.result["images"]) == 2 and oai.result["cost"] == 0.02
    )


def test_a_provider_that_is_down_falls_back(db, local_side):
    job = finished(db, enqueue(db, local_side, {"prompt": "a quiet harbour", **SMALL}))
    assert job.status == "completed", job.error_message
    assert job.result["provider"] == "local"
    assert "down is down; fell back to local" in job.result["provider_reason"]
    named = finished(db, enqueue(db, local_side, {"prompt": "x", "provider": "down", **SMALL}))
    assert named.status == "failed" and "provider down: cannot connect" in named.error_message


def test_a_slow_provider_times_out_and_a_cancel_reaches_the_remote_job(db, local_side, remote):
    slow = {"prompt": "a slow one", **SMALL, "steps": 150, "width": 128, "height": 128, "count": 2}
    timed_out = finished(db, enqueue(db, local_side, {**slow, "provider": "slow"}))
    assert timed_out.status == "failed" and "no answer from" in timed_out.error_message
    assert "within 1 s" in timed_out.error_message

    def remote_states():
        with remote.db.connection() as conn:
            return [
                r["status"] for r in conn.execute("SELECT status FROM processing_jobs ORDER BY created_at")
            ]

    deadline = time.monotonic() + 30
    while (
        remote_states() != ["cancelled"] and time.monotonic() < deadline
    ):  # the timeout interrupted it there
        time.sleep(0.1)
    assert remote_states() == ["cancelled"]
    job_id = enqueue(db, local_side, {**slow, "provider": "studio"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the remote instance is denoising
        with remote.db.connection() as conn:
            row = conn.execute(
                "SELECT progress FROM processing_jobs WHERE status = 'processing' "
                "AND (progress->>'step')::int > 0"
            ).fetchone()
        if row:
            break
        time.sleep(0.05)
    with db.connection() as conn:
        JobQueue(conn).cancel(job_id)
    assert finished(db, job_id).status == "cancelled"
    deadline = time.monotonic() + 30
    while remote_states() != ["cancelled", "cancelled"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert remote_states() == ["cancelled", "cancelled"]


def test_a_missing_secret_is_an_error_at_start_up(gen_settings, tmp_path, monkeypatch):
    monkeypatch.delenv("ENCHANT_TEST_ABSENT", raising=False)
    config = tmp_path / "providers.toml"
    config.write_text(
        '[providers.x]\ntype = "openai"\nurl = "http://127.0.0.1:9/v1"\napi_key_env = "ENCHANT_TEST_ABSENT"\n'
    )
    with pytest.raises(ConfigurationError, match="ENCHANT_TEST_ABSENT .* is not set"):
        check_providers(gen_settings.model_copy(update={"providers_file": config}))
    config.write_text('[roles]\nmidjourney = "nowhere"\n')
    with pytest.raises(ConfigurationError, match="midjourney = 'nowhere' names no provider"):
        check_providers(gen_settings.model_copy(update={"providers_file": config}))


# -- a misbehaving server ----------------------------------------------------------------------------


class Misbehaving(http.server.BaseHTTPRequestHandler):
    mode = "garbage"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = type(self).mode
        if mode == "garbage":
            self._send(200, "application/json", b"\x00\x01 not json {")
        elif mode == "html":
            self._send(502, "text/html", b"<!DOCTYPE html><html><body>Bad Gateway</body></html>")
        elif mode == "truncated":
            out = io.BytesIO()
            Image.new("RGB", (64, 64), (9, 9, 9)).save(out, format="PNG")
            body = json.dumps({"images": [base64.b64encode(out.getvalue()[:100]).decode()], "info": "{}"})
            self._send(200, "application/json", body.encode())
        elif mode == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(10 * 2**30))
            self.end_headers()
            block = b" " * 65536
            try:
                for _ in range(10 * 2**30 // 65536):
                    self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def misbehaving():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "mode, words",
    [
        ("garbage", "something that is not JSON"),
        ("html", "answered an HTML page (status 502)"),
        ("truncated", "cannot be read"),
        ("endless", "larger than 1048576 bytes"),
    ],
)
def test_bad_answers_are_clear_errors(misbehaving, mode, words):
    Misbehaving.mode = mode
    for provider in (
        A1111Provider("bad", misbehaving, retries=0, max_response_bytes=2**20),
        OpenAIProvider("bad", f"{misbehaving}/v1", retries=0, max_response_bytes=2**20),
    ):
        if mode == "truncated" and isinstance(provider, OpenAIProvider):
            continue  # its body has no 'data' (covered by the a1111 shape)
        started = time.monotonic()
        with pytest.raises(ProviderError, match="provider bad: ") as exc:
            provider.generate(GenerationRequest("x", parameters={"count": 1}))
        assert words in str(exc.value) and time.monotonic() - started < 10


def test_a_remote_providers_images_get_their_quality_and_are_redrawn_one_seed_a_call(db, local_side, remote):
    from enchant_worker.handlers.generate_image import REGENERATION_SEED_STRIDE as STRIDE

    job = finished(
        db,
        enqueue(
            db,
            local_side,
            {
                "prompt": "a mill",
                "provider": "studio",
                **SMALL,
                "count": 2,
                "regenerate_below": 1.0,
                "max_regenerations": 1,
            },
        ),
        timeout=120,
    )
    assert job.status == "completed", job.error_message
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT seed, quality, quality_score FROM images WHERE job_id = %s", (job.id,)
        ).fetchall()
    assert len(rows) == 2 and all(r["quality_score"] is not None for r in rows)
    seed = SMALL["seed"]
    tried = sorted([t["seed"] for t in r["quality"]["regenerations"]] for r in rows)
    assert tried == [
        [seed, seed + STRIDE],
        [seed + 1, seed + 1 + STRIDE],
    ]  # the remote honoured each new seed
