"""Training uploads with object storage: the API stores the files there too, and a worker on another
host (another home folder) gets them when it checks the job's reference, never anything outside the
caller's upload area."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.errors import AccessDenied, InvalidJob
from enchant_worker.handlers import default_registry
from enchant_worker.intake.actor import Actor
from enchant_worker.intake.references import training_source_folder
from tests.support.object_storage import BUCKET, make_bucket, s3_env, s3_server

pytestmark = pytest.mark.timeout(120)


def png(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (seed * 40 % 256, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def test_an_upload_made_on_the_api_host_is_trained_from_on_another_host(
    conn, db_url, settings, tmp_path, monkeypatch
):
    with s3_server() as endpoint:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)
        client = make_bucket(endpoint)
        url = f"s3://{BUCKET}/up"
        api_host = settings.model_copy(update={"storage_url": url, "home": tmp_path / "api-host"})
        worker_host = settings.model_copy(update={"storage_url": url, "home": tmp_path / "worker-host"})
        store = Store(conn)
        user = store.ensure_user("carol@example.org")
        key, _ = create_key(store, name="carol", role="user", user_id=user)
        app = create_app(api_host, database_url=db_url, job_types=default_registry(plugins=False))
        images = [png(i) for i in range(5)]
        with TestClient(app) as api:
            r = api.post(
                "/v2/uploads",
                files=[("images", (f"cat {i}.png", data, "image/png")) for i, data in enumerate(images)],
                headers={"Authorization": f"Bearer {key}"},
            )
        assert r.status_code == 201, r.text
        upload = r.json()
        stored = client.list_objects_v2(Bucket=BUCKET, Prefix=f"up/{upload['folder']}/")["Contents"]
        assert len(stored) == 5

        # the rights check (enqueue, the worker's re-check) only looks the upload up: nothing is copied
        checked = training_source_folder(
            conn, Actor(user, "user"), "training_images[0]", upload["id"], worker_host
        )
        assert checked.is_relative_to(worker_host.storage) and not checked.exists()
        with pytest.raises(InvalidJob, match="no upload folder"):
            training_source_folder(
                conn, Actor(user, "user"), "training_images[0]", f"uploads/{user}/nothing-here", worker_host
            )
        # the training job copies it, to read its files
        folder = training_source_folder(
            conn, Actor(user, "user"), "training_images[0]", upload["id"], worker_host, fetch=True
        )
        assert folder.is_relative_to(worker_host.storage)
        assert sorted(p.read_bytes() for p in folder.iterdir()) == sorted(images)

        # another user's upload area stays closed, whether the files are here or in object storage
        with pytest.raises(AccessDenied, match="another user"):
            training_source_folder(
                conn, Actor(uuid.uuid4(), "user"), "training_images[0]", upload["id"], worker_host
            )
        with pytest.raises(AccessDenied, match="another user's upload area"):
            training_source_folder(
                conn, Actor(uuid.uuid4(), "user"), "training_images[0]", upload["folder"], worker_host
            )
