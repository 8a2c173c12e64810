-- Attempts are spent by running, not by being held. A worker prefetches short jobs in batches; when it
-- dies, the jobs of its batch that never started go back to the queue without spending an attempt.
--
-- run_started: the handler of the current lease has started (or may have). A lease that starts at once
--   sets it in the lease statement; a prefetched job gets it from the heartbeat once it runs, or from
--   the slot just before it runs when the job was taken back unstarted before (see unstarted_reaps).
-- unstarted_reaps: how often the reaper took the job back from a dead worker before it had started.
--   Such a job is marked started before it runs again, so a job that kills its worker the moment it
--   starts still spends its attempts (it runs at most max_attempts + 1 times).
ALTER TABLE processing_jobs
    ADD COLUMN run_started BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN unstarted_reaps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE processing_jobs_history
    ADD COLUMN run_started BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN unstarted_reaps INTEGER NOT NULL DEFAULT 0;

-- Jobs held by workers that ran the code before this migration were leased under the old rule (a lease
-- is an attempt): keep that rule for them.
UPDATE processing_jobs SET run_started = TRUE WHERE status = 'processing';
