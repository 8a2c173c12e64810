"""Batch enqueue (COPY for plain batches, one JSON-expanded INSERT otherwise): what is stored, the
notifications (once per job type and statement), the counters, idempotency keys and bad input."""

import math
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from enchant_worker.domain.jobs import NewJob
from enchant_worker.errors import IdempotencyConflict, InvalidJob
from enchant_worker.queue import JobQueue
from enchant_worker.queue.jobqueue import same_request


@pytest.fixture
def queue(conn):
    return JobQueue(conn)


def _notifications(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5, stop_after=100)]


@pytest.mark.parametrize("keyed", [False, True], ids=["copy", "insert"])
def test_a_batch_notifies_once_per_type_and_is_counted(queue, conn, db_url, keyed):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN enchant_jobs")
        jobs = [
            NewJob("noop" if i % 2 else "other", {"i": i}, idempotency_key=f"k{i}" if keyed else None)
            for i in range(600)
        ]
        ids = queue.enqueue_many(jobs)
        assert sorted(_notifications(listener)) == ["noop", "other"]
    assert len(set(ids)) == 600
    counted = conn.execute("SELECT sum(value) AS n FROM job_counters WHERE counter = 'enqueued'").fetchone()[
        "n"
    ]
    assert counted == 600
    stored = {j.id: j for j in queue.list(limit=1000)}
    assert [stored[i].metadata["i"] for i in ids] == list(range(600))


def test_every_field_is_stored_on_both_paths(queue, conn):
    user = conn.execute("INSERT INTO users (email) VALUES ('b@example.org') RETURNING id").fetchone()["id"]
    entity = uuid.uuid4()
    later = datetime.now(UTC) + timedelta(hours=1)
    plain = NewJob(
        "noop",
        {"a": [1, "x"]},
        priority=2,
        max_attempts=7,
        entity_type="scene",
        entity_id=entity,
        user_id=user,
    )
    deferred = NewJob("noop", {"b": 1}, run_after=later, user_id=user)
    [a] = queue.enqueue_many([plain])  # COPY
    [b] = queue.enqueue_many([deferred])  # INSERT: run_after given
    ja, jb = queue.get(a), queue.get(b)
    assert (ja.metadata, ja.priority, ja.max_attempts, ja.entity_type, ja.entity_id, ja.user_id) == (
        {"a": [1, "x"]},
        2,
        7,
        "scene",
        entity,
        user,
    )
    assert abs(ja.run_after - datetime.now(UTC)) < timedelta(minutes=1)  # the server's NOW()
    assert abs(jb.run_after - later) < timedelta(seconds=1) and jb.status == "pending"


def test_keys_replay_and_conflict_as_before(queue):
    first = queue.enqueue_many([NewJob("noop", {"x": (1, 2)}, idempotency_key="k"), NewJob("noop")])
    again = queue.enqueue_many([NewJob("noop", {"x": [1, 2]}, idempotency_key="k")])
    assert again == first[:1]  # a tuple is stored as a list: the same request
    with pytest.raises(IdempotencyConflict):
        queue.enqueue_many([NewJob("noop", {"x": [2]}, idempotency_key="k")])
    assert same_request({"job_type": "noop", "metadata": {"x": [1, 2]}}, "noop", {"x": (1, 2)})
    assert not same_request({"job_type": "noop", "metadata": {}}, "other", {})


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"v": math.nan}, "metadata: cannot be stored as JSON"),
        ({"v": object()}, "metadata: cannot be stored as JSON"),
        ({"v": "a\x00b"}, "metadata.v: "),
    ],
)
def test_one_bad_job_refuses_the_batch_naming_the_field_and_writes_nothing(queue, metadata, message):
    with pytest.raises(InvalidJob, match=message):
        queue.enqueue_many([NewJob("noop", {"ok": 1}), NewJob("noop", metadata)])
    assert queue.list() == []


def test_an_empty_batch_writes_nothing(queue):
    assert queue.enqueue_many([]) == []
