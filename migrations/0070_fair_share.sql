-- Fair share inside a priority level (the lease_jobs_fair statement): per group of jobs (a user, or the
-- jobs with no user, which are one group of their own) the lease needs (a) the groups that have pending
-- jobs, found by a loose index scan, one probe per group, (b) each group's oldest pending jobs in queue
-- order, and (c) how many of its jobs are running now. One index serves all three, so enqueueing pays for
-- one more index, not three. The seed's queue index still serves the plain lease (fairness off).
-- The nil UUID names the no-user group (gen_random_uuid never makes it); queries use the same expression.
CREATE INDEX idx_processing_jobs_fair ON processing_jobs
    (status, COALESCE(user_id, '00000000-0000-0000-0000-000000000000'::uuid), priority, created_at)
    WHERE status IN ('pending', 'processing');
