"""/metrics as Prometheus uses it: counters that never decrease, and a scrape token instead of an admin key."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from enchant_worker.api import create_app
from enchant_worker.config import Settings
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.archive import archive_finished_jobs

TOKEN = "scrape-" + "x" * 32


def scrape(client, headers) -> dict[tuple[str, tuple], float]:
    """Every counter-like sample (counters, histogram buckets, counts and sums), parsed by
    prometheus_client's own text parser: {(sample name, sorted labels): value}."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    samples = {}
    for family in text_string_to_metric_families(r.text):
        if family.type in ("counter", "histogram"):
            for s in family.samples:
                if s.name.endswith(("_total", "_bucket", "_count", "_sum")):
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def run(queue, job_type="noop", *, ok=True):
    job = queue.lease("w1", [job_type])[0]
    lease = Lease(job.id, job.lease_token)
    if ok:
        queue.complete(lease, {"ok": True})
    else:
        queue.fail(lease, "disk on fire", attempt=job.attempts, retry=False)
    return job.id


def test_counters_never_decrease_across_retry_and_archive(client, admin, conn):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop") for _ in range(3)])
    run(queue)
    failed = run(queue, ok=False)
    before = scrape(client, admin.headers)
    assert before[("enchant_jobs_finished_total", (("job_type", "noop"), ("status", "completed")))] == 1
    assert before[("enchant_jobs_failed_total", (("job_type", "noop"),))] == 1

    # A retry turns the failed row back into a pending one; archiving moves the finished rows away.
    queue.retry(failed)
    conn.execute(
        "UPDATE processing_jobs SET completed_at = NOW() - INTERVAL '2 days' WHERE status = 'completed'"
    )
    assert archive_finished_jobs(conn, older_than_s=86400) == 1
    after = scrape(client, admin.headers)

    decreased = {key: (before[key], after.get(key)) for key in before if after.get(key, -1) < before[key]}
    assert decreased == {}
    # Counted once as they happened, whatever the rows look like now (counting rows gave 0 for both).
    assert after[("enchant_jobs_finished_total", (("job_type", "noop"), ("status", "completed")))] == 1
    assert after[("enchant_jobs_failed_total", (("job_type", "noop"),))] == 1
    assert after[("enchant_jobs_requeued_total", (("job_type", "noop"),))] == 1
    assert after[("enchant_job_duration_seconds_count", (("job_type", "noop"),))] == 1

    # The retried job fails again: the failure counter goes on from where it was.
    run(queue, ok=False)
    again = scrape(client, admin.headers)
    assert again[("enchant_jobs_failed_total", (("job_type", "noop"),))] == 2
    assert again[("enchant_job_errors_total", (("job_type", "noop"),))] == 2
    assert again[("enchant_job_leases_total", (("job_type", "noop"),))] == 3
    assert again[("enchant_jobs_enqueued_total", (("job_type", "noop"),))] == 3


def test_crashes_and_unstarted_reaps_are_counted(client, admin, conn):
    queue = JobQueue(conn)
    queue.enqueue_many([NewJob("noop"), NewJob("noop")])
    queue.lease("w1", ["noop"], limit=1, start=True)
    queue.lease("w1", ["noop"], limit=1, start=False)
    conn.execute("UPDATE processing_jobs SET lease_expires_at = NOW() - INTERVAL '1 second'")
    assert len(queue.reap()) == 2
    samples = scrape(client, admin.headers)
    assert samples[("enchant_job_crashes_total", (("job_type", "noop"),))] == 1
    assert samples[("enchant_job_unstarted_reaps_total", (("job_type", "noop"),))] == 1


@pytest.fixture
def token_client(settings, db_url):
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}), database_url=db_url)
    with TestClient(app) as c:
        yield c


def test_the_scrape_token_reads_metrics_without_an_admin_key(token_client, admin, alice):
    assert token_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert token_client.get("/metrics", headers=admin.headers).status_code == 200  # admin keys still work
    assert token_client.get("/metrics", headers=alice.headers).status_code == 403
    r = token_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN[:-1]}y"})
    assert r.status_code == 401 and "unknown or revoked API key" in r.json()["detail"]
    assert token_client.get("/metrics").status_code == 401
    # The token opens /metrics only.
    assert token_client.get("/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_without_a_configured_token_no_bearer_reads_metrics(client):
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_a_short_scrape_token_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="ENCHANT_METRICS_TOKEN must be at least 16 characters"):
        Settings(metrics_token="short")
