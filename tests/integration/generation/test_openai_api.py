"""OpenAI's Images API, judged by the official `openai` Python client against a real HTTP server with
a worker running the jobs: b64_json and url, OpenAI's error shape, quotas, worker and data intact."""

from __future__ import annotations

import base64
import io
import uuid

import openai
import pytest
import requests
from PIL import Image

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.handlers import default_registry
from tests.support.http_server import ServerThread
from tests.support.workers import WorkerThreads


@pytest.fixture
def service(db, gen_settings):
    app = create_app(
        gen_settings, database_url=gen_settings.database_url, job_types=default_registry(plugins=False)
    )
    workers = WorkerThreads(db, gen_settings)
    workers.start(types=["generate_image"], poll_interval_s=0.05)
    with ServerThread(app) as server:
        yield server
    workers.stop_all(15)


@pytest.fixture
def user(db):
    with db.connection() as conn:
        store = Store(conn)
        user_id = store.ensure_user(f"u-{uuid.uuid4().hex[:6]}@example.org")
        return create_key(store, name="u", role="user", user_id=user_id)[0], user_id


def oai(server, key) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{server.url}/openai/v1", max_retries=0, timeout=60)


def test_b64_json_and_url(service, user, db):
    client = oai(service, user[0])
    out = client.images.generate(
        model="tiny-sd", prompt="a fox in the snow", n=2, size="64x64", response_format="b64_json"
    )
    assert len(out.data) == 2
    image = Image.open(io.BytesIO(base64.b64decode(out.data[0].b64_json)))
    assert image.size == (64, 64) and "Model: tiny-sd" in image.text["parameters"]
    by_url = client.images.generate(prompt="a fox in the snow", size="64x64", response_format="url")
    url = by_url.data[0].url
    assert url.startswith(service.url + "/media/")
    fetched = requests.get(url)  # a signed URL: no key needed
    assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).size == (64, 64)
    # per-user cost and images in the metrics (the local provider costs 0)
    with db.connection() as conn:
        admin = create_key(Store(conn), name="admin", role="admin", user_id=None)[0]
    metrics = requests.get(f"{service.url}/metrics", headers={"Authorization": f"Bearer {admin}"}).text
    assert f'enchant_image_cost_total{{provider="local",user_id="{user[1]}"}} 0.0' in metrics
    assert f'enchant_images_generated_total{{provider="local",user_id="{user[1]}"}} 3.0' in metrics


def test_errors_have_openai_shape(service, user, db):
    client = oai(service, user[0])
    with pytest.raises(openai.BadRequestError) as bad:  # OpenAI's 400 for an invalid request
        client.images.generate(model="dall-e-9", prompt="x", size="64x64")
    assert bad.value.body["type"] == "invalid_request_error"
    error = bad.value.body
    assert error["param"] == "model" and "unknown model 'dall-e-9'" in error["message"]
    with pytest.raises(openai.BadRequestError) as size:
        client.images.generate(prompt="x", size="65x64")
    assert size.value.body["param"] == "size" and "multiple of 8" in size.value.body["message"]
    with pytest.raises(openai.AuthenticationError) as auth:
        oai(service, "ew_wrong").images.generate(prompt="x")
    assert auth.value.body["code"] == "invalid_api_key"
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0
        conn.execute("UPDATE users SET quota_overrides = '{\"images_per_day\": 1}' WHERE id = %s", (user[1],))
    client.images.generate(prompt="one", size="64x64", response_format="b64_json")
    with pytest.raises(openai.RateLimitError) as quota:
        client.images.generate(prompt="two", size="64x64", response_format="b64_json")
    assert quota.value.body["type"] == "insufficient_quota" and "per day" in quota.value.body["message"]
