"""A LoRA row never stays `training` after its job ended outside the handler."""

import uuid

from enchant_worker.queue import JobQueue

from .conftest import train_lora_job


def _lora(conn) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO lora_models (name, model_file_url) VALUES ('ink', 'loras/x') RETURNING id"
    ).fetchone()["id"]


def test_cancelled_while_pending_marks_the_lora_failed(conn):
    lora = _lora(conn)
    queue = JobQueue(conn)
    job_id = queue.enqueue(train_lora_job(lora, {"name": "ink"}))
    queue.cancel(job_id)
    row = conn.execute(
        "SELECT status, error_message, training_job_id FROM lora_models WHERE id = %s", (lora,)
    ).fetchone()
    assert row == {"status": "failed", "error_message": "training job cancelled", "training_job_id": job_id}


def test_reaped_for_good_marks_the_lora_failed_with_the_reason(conn):
    lora = _lora(conn)
    queue = JobQueue(conn)
    queue.enqueue(train_lora_job(lora, {"name": "ink"}))
    conn.execute("UPDATE processing_jobs SET max_attempts = 1")
    queue.lease("w1", ["train_lora"])
    conn.execute("UPDATE processing_jobs SET lease_expires_at = NOW() - INTERVAL '1 second'")
    assert [r["status"] for r in queue.reap()] == ["failed"]
    row = conn.execute("SELECT status, error_message FROM lora_models WHERE id = %s", (lora,)).fetchone()
    assert row["status"] == "failed" and "lease expired" in row["error_message"]


def test_a_retry_does_not_touch_the_lora(conn):
    lora = _lora(conn)
    queue = JobQueue(conn)
    queue.enqueue(train_lora_job(lora, {"name": "ink"}))
    job = queue.lease("w1", ["train_lora"])[0]
    from enchant_worker.queue import Lease

    assert queue.fail(Lease(job.id, job.lease_token), "transient", attempt=1) == "pending"
    assert (
        conn.execute("SELECT status FROM lora_models WHERE id = %s", (lora,)).fetchone()["status"]
        == "training"
    )
