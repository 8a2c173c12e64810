"""The worker's re-check of a user's jobs reads each user once per lease (not once or twice per job), and
still catches a right lost since the enqueue: references are checked for every job, and a user's role
and tier are read again by the next lease."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from enchant_worker.domain.jobs import JobStatus, NewJob
from enchant_worker.errors import AccessDenied, JobTypeNotAllowed
from enchant_worker.handlers import default_registry
from enchant_worker.intake import Rechecks
from enchant_worker.queue import JobQueue
from enchant_worker.worker.runner import Worker
from tests.support.stories import make_story, make_user


class Counting:
    """A connection factory for Rechecks that counts the statements run on it."""

    def __init__(self, conn):
        self.conn, self.statements = conn, 0

    @contextmanager
    def __call__(self):
        execute = self.conn.execute

        def counted(*args, **kwargs):
            self.statements += 1
            return execute(*args, **kwargs)

        self.conn.execute = counted
        try:
            yield self.conn
        finally:
            del self.conn.execute


def _admin_key(conn, user_id: uuid.UUID) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO api_keys (name, prefix, key_hash, role, user_id) "
        "VALUES ('k', 'ew_test', %s, 'admin', %s) RETURNING id",
        (uuid.uuid4().hex, user_id),
    ).fetchone()["id"]


def _leased(conn, jobs: list[NewJob]):
    queue = JobQueue(conn)
    queue.enqueue_many(jobs)
    return queue.lease("w", {j.job_type for j in jobs}, limit=len(jobs))


def test_a_users_row_is_read_once_per_lease(conn, settings):
    user = make_user(conn)
    _admin_key(conn, user)
    jobs = _leased(conn, [NewJob("noop", user_id=user) for _ in range(20)])
    counting = Counting(conn)
    rechecks = Rechecks(counting, settings)
    for job in jobs:
        assert rechecks.check(job).max_run_s is None  # an admin's job: no tier limit
    assert counting.statements == 1
    Rechecks(counting, settings).check(jobs[0])  # the next lease reads the user again
    assert counting.statements == 2


def test_a_right_revoked_after_the_enqueue_is_caught(conn, settings):
    """bob may write alice's story while his jobs are enqueued; the share is revoked, then: a job of the
    same lease checked after the revocation fails, as does one of a later lease."""
    alice, bob = make_user(conn), make_user(conn)
    story = make_story(conn, settings.storage, user_id=alice, images=False)
    conn.execute(
        "INSERT INTO story_collaborators (story_id, user_id, role, status) "
        "VALUES (%s, %s, 'contributor', 'accepted')",
        (story.story_id, bob),
    )
    first, second = _leased(
        conn,
        [
            NewJob("generate_image", {"scene_id": str(story.scene_ids[0])}, user_id=bob),
            NewJob("generate_image", {"scene_id": str(story.scene_ids[1])}, user_id=bob),
        ],
    )
    rechecks = Rechecks(Counting(conn), settings)
    rechecks.check(first)
    conn.execute("DELETE FROM story_collaborators WHERE user_id = %s", (bob,))
    with pytest.raises(AccessDenied, match="scene_id"):
        rechecks.check(second)  # references are checked for every job, even within a lease
    with pytest.raises(AccessDenied, match="scene_id"):
        Rechecks(Counting(conn), settings).check(first)


def test_a_revoked_admin_key_is_caught_by_the_next_lease(conn, db, settings):
    """The worker loop: bob's noop jobs (an admin's job type) run while he holds an admin key; once it is
    revoked, his next job fails naming job_type, without running."""
    bob = make_user(conn)
    key = _admin_key(conn, bob)
    queue = JobQueue(conn)
    ran = queue.enqueue(NewJob("noop", user_id=bob))

    def worker() -> Worker:
        return Worker(db, settings, default_registry(plugins=False), job_types=["noop"], burst=True)

    worker().run()
    assert queue.get(ran).status == JobStatus.COMPLETED
    conn.execute("UPDATE api_keys SET revoked_at = NOW() WHERE id = %s", (key,))
    refused = queue.enqueue(NewJob("noop", user_id=bob))
    worker().run()
    job = queue.get(refused)
    assert job.status == JobStatus.FAILED and job.error_message.startswith("invalid input: job_type:"), job
    with pytest.raises(JobTypeNotAllowed):
        Rechecks(Counting(conn), settings).check(job)
