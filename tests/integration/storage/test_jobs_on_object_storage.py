"""Jobs and the API on S3-compatible storage: an export made while the object storage is down is
retried with backoff and never completed without its file; once the storage is back it completes, and
the API streams the stored objects (bytes equal, ETag, 304; a missing object is a 404)."""

from __future__ import annotations

import hashlib
import urllib.request

import pytest
from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.db.connection import Database
from enchant_worker.domain.jobs import NewJob
from enchant_worker.export.importer import import_story, read_export
from enchant_worker.export.run import ExportOptions, export_story
from enchant_worker.handlers import default_registry
from enchant_worker.queue.jobqueue import JobQueue
from enchant_worker.storage import from_url
from tests.support.databases import another_database
from tests.support.object_storage import BUCKET, make_bucket, s3_env, s3_server, upload_folder
from tests.support.stories import make_story
from tests.support.waiting import free_port, wait_for
from tests.support.workers import WorkerThreads

pytestmark = pytest.mark.timeout(120)
PREFIX = "site"


def job_row(conn, job_id):
    return conn.execute(
        "SELECT status, attempts, error_message, result FROM processing_jobs WHERE id = %s", (job_id,)
    ).fetchone()


def test_an_export_waits_out_a_storage_outage_and_the_api_serves_it_from_s3(
    conn, db, db_url, settings, tmp_path, monkeypatch
):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in s3_env(endpoint).items():
        monkeypatch.setenv(name, value)
    s3_settings = settings.model_copy(update={"storage_url": f"s3://{BUCKET}/{PREFIX}"})
    images = tmp_path / "made-elsewhere"
    story = make_story(conn, images, chapters=1, scenes_per_chapter=2)
    job_id = JobQueue(conn).enqueue(
        NewJob(
            "export_story",
            {"story_id": str(story.story_id), "format": "json", "include_images": True},
            entity_type="story",
            entity_id=story.story_id,
            user_id=story.user_id,
            max_attempts=20,
        )
    )
    workers = WorkerThreads(db, s3_settings)
    try:
        workers.start(types=["export_story"])
        # Nothing listens at the endpoint: the job goes back to wait, with the reason, and no result.
        failed = wait_for(
            lambda: (r := job_row(conn, job_id))["attempts"] >= 1 and r["status"] == "pending" and r,
            timeout=60,
            what="a retry after the outage",
        )
        assert "StorageUnavailable" in failed["error_message"] and "unreachable" in failed["error_message"]
        assert failed["result"] is None

        with s3_server(port=port):
            client = make_bucket(endpoint)
            upload_folder(client, images, prefix=PREFIX)  # the story's images, as another host stored them
            done = wait_for(
                lambda: (r := job_row(conn, job_id))["status"] == "completed" and r,
                timeout=60,
                what="the export after the storage came back",
            )
            key = done["result"]["file"]
            stored = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read()
            assert hashlib.sha256(stored).hexdigest() == done["result"]["sha256"]
            assert not (settings.storage / key).exists()  # nothing went to the local folder

            app = create_app(s3_settings, database_url=db_url, job_types=default_registry(plugins=False))
            admin_key, _ = create_key(Store(conn), name="admin", role="admin", user_id=None)
            headers = {"Authorization": f"Bearer {admin_key}"}
            with TestClient(app) as api:
                r = api.get(f"/v1/exports/{job_id}/file", headers=headers)
                assert r.status_code == 200 and r.content == stored
                assert r.headers["etag"] == f'"{done["result"]["sha256"]}"'
                again = api.get(
                    f"/v1/exports/{job_id}/file", headers={**headers, "If-None-Match": r.headers["etag"]}
                )
                assert again.status_code == 304
                image = api.get(f"/v1/images/{story.image_ids[0]}/file", headers=headers)
                assert image.status_code == 200 and image.content == story.image_paths[0].read_bytes()
                assert image.headers["content-type"] == "image/png"
                client.delete_object(
                    Bucket=BUCKET, Key=f"{PREFIX}/{story.image_paths[1].relative_to(images)}"
                )
                gone = api.get(f"/v1/images/{story.image_ids[1]}/file", headers=headers)
                assert gone.status_code == 404 and "missing from storage" in gone.text
            # or, with ENCHANT_STORAGE_PRESIGNED_S, a redirect to the object store after the same checks
            presigning = create_app(
                s3_settings.model_copy(update={"storage_presigned_s": 120}),
                database_url=db_url,
                job_types=default_registry(plugins=False),
            )
            with TestClient(presigning, follow_redirects=False) as api:
                assert api.get(f"/v1/exports/{job_id}/file").status_code == 401
                moved = api.get(f"/v1/exports/{job_id}/file", headers=headers)
                assert moved.status_code == 307 and moved.headers["cache-control"] == "private, no-store"
            with urllib.request.urlopen(moved.headers["location"], timeout=10) as answer:  # noqa: S310
                assert answer.read() == stored
                assert answer.headers["Content-Disposition"] == r.headers["content-disposition"]
                assert answer.headers["Content-Type"] == "application/json"
        # the object storage goes away: the API says so and when to try again, nothing else
        with TestClient(app) as api:
            down = api.get(f"/v1/images/{story.image_ids[0]}/file", headers=headers)
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert down.json() == {"detail": "the file storage is unavailable; try again shortly"}
    finally:
        workers.stop_all()


@pytest.fixture
def second_db(admin_url, template_db):
    yield from another_database(admin_url, template_db)


def test_a_json_export_moves_into_an_instance_on_object_storage_exactly(
    conn, second_db, tmp_path, monkeypatch
):
    local = tmp_path / "local"
    story = make_story(conn, local, chapters=2, scenes_per_chapter=2)
    first = export_story(conn, story.story_id, ExportOptions("json", include_images=True), local)
    with s3_server() as endpoint:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)
        client = make_bucket(endpoint)
        objects = from_url(f"s3://{BUCKET}/{PREFIX}")
        with Database(second_db).connection() as other:
            data = read_export(local / first.file)
            assert import_story(other, data, tmp_path / "unused", storage=objects) == story.story_id
            again = export_story(
                other,
                story.story_id,
                ExportOptions("json", include_images=True),
                tmp_path / "work",
                storage=objects,
            )
        assert objects.get_bytes(again.file) == (local / first.file).read_bytes()
        images = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/images/")["Contents"]
        assert len(images) == 4
        assert not (tmp_path / "unused").exists()  # nothing went to a local folder
