"""Health, readiness, queue statistics, workers and Prometheus metrics."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease


def test_health_needs_no_key(client):
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_readyz_reports_pending_migrations(settings, db_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(settings.migrations_dir, folder)
    (folder / "9999_later.sql").write_text("SELECT 1;")
    with TestClient(
        create_app(settings.model_copy(update={"migrations_dir": folder}), database_url=db_url)
    ) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["pending_migrations"] == ["9999_later"]


def test_readyz_when_the_database_is_unreachable(settings):
    url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"
    with TestClient(create_app(settings, database_url=url)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert c.get("/healthz").status_code == 200


def _run_some_jobs(conn):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop") for _ in range(4)] + [NewJob("export_story")])
    queue.register_worker(
        "w1",
        host="box",
        pid=42,
        job_types=["noop"],
        device={"kind": "cuda", "name": "H100", "memory_total_mb": 80000, "memory_used_mb": 1234},
        concurrency=1,
    )
    done, failed, running = queue.lease("w1", ["noop"], limit=3)
    queue.complete(Lease(done.id, done.lease_token), {"ok": True})
    queue.fail(Lease(failed.id, failed.lease_token), "CUDA out of memory", attempt=1, retry=False)
    queue.extend([Lease(running.id, running.lease_token)], {running.id: {"percent": 40}})
    queue.worker_heartbeat("w1", [running.id])
    return running


def test_queue_stats(client, alice, conn):
    _run_some_jobs(conn)
    stats = client.get("/v1/queue/stats", params={"window_minutes": 5}, headers=alice.headers).json()
    assert stats["totals"] == {"pending": 2, "processing": 1, "completed": 1, "failed": 1}
    noop = [t for t in stats["by_type"] if t["job_type"] == "noop"][0]
    assert noop["counts"] == {"pending": 1, "processing": 1, "completed": 1, "failed": 1}
    assert (
        noop["p50_run_s"] is not None
        and noop["p95_run_s"] >= noop["p50_run_s"]
        and noop["completed_in_window"] == 1
    )
    assert stats["oldest_pending_age_s"] >= 0 and len(stats["throughput"]) == 5
    assert (
        sum(p["completed"] for p in stats["throughput"]) == 1
        and sum(p["failed"] for p in stats["throughput"]) == 1
    )
    assert (
        client.get("/v1/queue/stats", params={"window_minutes": 0}, headers=alice.headers).status_code == 422
    )


def test_workers(client, admin, conn):
    running = _run_some_jobs(conn)
    [w] = client.get("/v1/workers", headers=admin.headers).json()
    assert w["id"] == "w1" and w["host"] == "box" and w["gpu_memory_total_mb"] == 80000
    assert w["gpu_memory_used_mb"] == 1234 and w["heartbeat_age_s"] < 60
    [job] = w["current_jobs"]
    assert job["id"] == str(running.id) and job["progress_percent"] == 40 and job["lease_age_s"] >= 0


def test_metrics(client, admin, conn):
    _run_some_jobs(conn)
    r = client.get("/metrics", headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'enchant_queue_jobs{job_type="noop",status="pending"} 1.0' in text
    assert 'enchant_jobs_failed_total{job_type="noop"} 1.0' in text
    assert 'enchant_job_duration_seconds_count{job_type="noop"} 1.0' in text
    assert 'enchant_job_duration_seconds_bucket{job_type="noop",le="+Inf"} 1.0' in text
    assert 'enchant_worker_gpu_memory_total_bytes{device="H100",worker="w1"} 8.388608e+010' in text.replace(
        "e+10", "e+010"
    )
    assert 'enchant_worker_heartbeat_age_seconds{host="box",worker="w1"}' in text


def test_dashboard_login_and_panels(client, admin, alice, conn):
    r = client.get("/dashboard")
    assert r.status_code == 401 and '<form method="post"' in r.text
    assert client.post("/dashboard", data={"key": alice.key}).status_code == 403
    assert client.post("/dashboard", data={"key": "ew_wrong"}).status_code == 401
    r = client.post("/dashboard", data={"key": admin.key}, follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    _run_some_jobs(conn)
    r = client.post("/dashboard", data={"key": admin.key})  # follows the redirect with the cookie
    assert r.status_code == 200 and 'id="total-pending">2<' in r.text and "CUDA out of memory" in r.text
    assert "w1" in r.text and "40%" in r.text
    # The cookie is not accepted for writes.
    assert client.post("/v1/jobs", json={"job_type": "noop"}).status_code == 401
    client.cookies.clear()
