-- The scheduler's leader as a lease row, for schedulers that reach Postgres only through a pooler in
-- transaction mode (no session advisory lock there). The leader renews expires_at every check; anyone takes
-- the row over once it has expired. A leader holding the advisory lock too (a direct connection) marks
-- the row via_lock: the next lock holder takes it at once, since the lock proves the old session is gone.
CREATE TABLE scheduler_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    via_lock BOOLEAN NOT NULL DEFAULT FALSE,
    acquired_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- The idle poll of a worker without LISTEN (behind a pooler): one index-only probe for runnable work of its
-- types, so that a thousand idle workers polling cost the server little (see runnable_probe).
CREATE INDEX idx_processing_jobs_runnable ON processing_jobs (job_type, run_after) WHERE status = 'pending';
