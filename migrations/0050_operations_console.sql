-- The operations console: what admins did to jobs, and each job's progress over time.

-- Every console action on a job (cancel, retry, priority, bulk ones), with who did it: the API key
-- (kept by name too, so that the record survives the key) and the key's user, if any.
CREATE TABLE job_actions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id UUID NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('cancel', 'retry', 'priority')),
    key_id UUID,
    key_name TEXT NOT NULL,
    user_id UUID,
    from_status TEXT,
    to_status TEXT,
    detail JSONB NOT NULL DEFAULT '{}',
    bulk BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_job_actions_job ON job_actions (job_id, created_at);

-- Progress over time (stages, steps, training loss) for the job page and the training curve. Written
-- by a trigger when a running job's reported progress changes (a heartbeat carries at most one report
-- per job), so no writer of processing_jobs has to know; jobs that report no progress (most short
-- jobs) cost nothing.
CREATE TABLE job_progress_history (
    job_id UUID NOT NULL,
    attempt INTEGER NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    percent SMALLINT NOT NULL,
    progress JSONB
);
CREATE INDEX idx_job_progress_history_job ON job_progress_history (job_id, at);

CREATE FUNCTION record_job_progress() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_progress_history (job_id, attempt, percent, progress)
    VALUES (NEW.id, NEW.attempts, NEW.progress_percent, NEW.progress);
    RETURN NULL;
END $$;

CREATE TRIGGER processing_jobs_progress_history
AFTER UPDATE OF progress, progress_percent ON processing_jobs
FOR EACH ROW
WHEN (NEW.status = 'processing' AND (NEW.progress IS DISTINCT FROM OLD.progress
                                     OR NEW.progress_percent IS DISTINCT FROM OLD.progress_percent))
EXECUTE FUNCTION record_job_progress();

-- The history goes when its job is archived or deleted (the actions stay: they are the audit trail).
CREATE FUNCTION forget_job_progress() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_progress_history h USING old_rows o WHERE h.job_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER processing_jobs_forget_progress
AFTER DELETE ON processing_jobs
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT
EXECUTE FUNCTION forget_job_progress();

-- The console's and the API's job lists, newest first: one index (every index on this table costs on each
-- of a job's writes, as the queue's updates are not HOT; a filter by state or type walks this one and
-- skips, which bench_console.py measures at a million rows).
CREATE INDEX idx_processing_jobs_created ON processing_jobs (created_at DESC, id DESC);

-- The overview reads finished jobs by completion time (counts over 24 h, the throughput chart, recent
-- failures): the same index as before, carrying the type and state, so that these are index-only scans.
DROP INDEX IF EXISTS idx_processing_jobs_finished;
CREATE INDEX idx_processing_jobs_finished ON processing_jobs (completed_at) INCLUDE (job_type, status)
    WHERE completed_at IS NOT NULL;
