"""The only code that writes processing_jobs: enqueue, lease, heartbeat, finish, retry, cancel, reap."""

from enchant_worker.queue.jobqueue import JobQueue, Lease

__all__ = ["JobQueue", "Lease"]
