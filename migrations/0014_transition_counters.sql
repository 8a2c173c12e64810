-- Counters that only ever increase, for Prometheus: every change of a job is counted as it happens, by
-- triggers in the same statement (so in the same transaction) that changes the job. Counting rows
-- instead goes back when a failed job is retried or finished jobs move to the history.
--
-- Each database session adds to its own shard of a counter (pg_backend_pid() % 32), so workers that
-- finish jobs at the same moment do not queue on one row; a scrape sums the shards. Rows are never
-- deleted or decreased.

CREATE TABLE job_counters (
    job_type TEXT NOT NULL,
    counter TEXT NOT NULL,  -- enqueued, leased, completed, failed, cancelled, requeued, errors, crashes,
                            -- unstarted_reaps, duration_seconds_sum
    shard SMALLINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_type, counter, shard)
);

-- The run-time histogram of completed jobs (completed_at - started_at, the last attempt): how many fell
-- in each bucket, named by its upper bound in seconds (the smallest bound at or above the run time;
-- 'Infinity' for the longest). A scrape adds them up into Prometheus' cumulative buckets.
CREATE TABLE job_duration_buckets (
    job_type TEXT NOT NULL,
    le DOUBLE PRECISION NOT NULL,
    shard SMALLINT NOT NULL,
    jobs BIGINT NOT NULL,
    PRIMARY KEY (job_type, le, shard)
);

CREATE FUNCTION job_duration_bounds() RETURNS DOUBLE PRECISION[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 'Infinity']::DOUBLE PRECISION[]
$$;

-- The bucket of a run time: the smallest bound above it (a missing start counts as 0 s). One expression,
-- so Postgres inlines it into the trigger's query instead of calling a function per row.
CREATE FUNCTION job_duration_bucket(started TIMESTAMPTZ, finished TIMESTAMPTZ) RETURNS DOUBLE PRECISION
LANGUAGE sql IMMUTABLE AS $$
    SELECT (job_duration_bounds())[width_bucket(COALESCE(EXTRACT(EPOCH FROM finished - started)::DOUBLE PRECISION, 0),
                                                job_duration_bounds()) + 1]
$$;

-- Inserted jobs.
CREATE FUNCTION processing_jobs_count_inserts() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counters AS c (job_type, counter, shard, value)
    SELECT job_type, 'enqueued', pg_backend_pid() % 32, count(*) FROM new_jobs GROUP BY job_type ORDER BY job_type
    ON CONFLICT (job_type, counter, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_count_inserts AFTER INSERT ON processing_jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION processing_jobs_count_inserts();

-- Updated jobs: status transitions and the growth of the errors, crashes and unstarted_reaps columns.
CREATE FUNCTION processing_jobs_count_updates() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    my_shard SMALLINT := pg_backend_pid() % 32;
BEGIN
    -- One statement, one pass over the changed rows. Statements that change nothing counted (a
    -- heartbeat, a priority change) write nothing. Rows are written in key order so two sessions
    -- sharing a shard cannot deadlock.
    WITH per_bucket AS (
        -- Per job type and (for jobs completed now) run-time bucket: how many made each transition.
        SELECT n.job_type,
            CASE WHEN n.status = 'completed' AND o.status <> 'completed'
                 THEN job_duration_bucket(n.started_at, n.completed_at) END AS le,
            count(*) FILTER (WHERE o.status = 'pending' AND n.status = 'processing') AS leased,
            count(*) FILTER (WHERE n.status = 'completed' AND o.status <> 'completed') AS completed,
            count(*) FILTER (WHERE n.status = 'failed' AND o.status <> 'failed') AS failed,
            count(*) FILTER (WHERE n.status = 'cancelled' AND o.status <> 'cancelled') AS cancelled,
            count(*) FILTER (WHERE n.status = 'pending' AND o.status IN ('completed', 'failed', 'cancelled'))
                AS requeued,
            sum(GREATEST(n.errors - o.errors, 0)) AS errors,
            sum(GREATEST(n.crashes - o.crashes, 0)) AS crashes,
            sum(GREATEST(n.unstarted_reaps - o.unstarted_reaps, 0)) AS unstarted_reaps,
            sum(GREATEST(EXTRACT(EPOCH FROM n.completed_at - n.started_at)::DOUBLE PRECISION, 0))
                FILTER (WHERE n.status = 'completed' AND o.status <> 'completed') AS duration_seconds_sum
        FROM old_jobs o
        JOIN new_jobs n ON n.id = o.id
        GROUP BY 1, 2
    ), per_type AS (
        SELECT job_type, sum(leased) AS leased, sum(completed) AS completed, sum(failed) AS failed,
               sum(cancelled) AS cancelled, sum(requeued) AS requeued, sum(errors) AS errors,
               sum(crashes) AS crashes, sum(unstarted_reaps) AS unstarted_reaps,
               sum(duration_seconds_sum) AS duration_seconds_sum
        FROM per_bucket GROUP BY job_type
    ), histogram AS (
        -- Completed jobs into the run-time histogram: each into the one bucket its run time falls in.
        INSERT INTO job_duration_buckets AS b (job_type, le, shard, jobs)
        SELECT job_type, le, my_shard, completed FROM per_bucket WHERE le IS NOT NULL ORDER BY job_type, le
        ON CONFLICT (job_type, le, shard) DO UPDATE SET jobs = b.jobs + EXCLUDED.jobs
    )
    INSERT INTO job_counters AS c (job_type, counter, shard, value)
    SELECT t.job_type, v.counter, my_shard, v.amount
    FROM per_type t
    CROSS JOIN LATERAL (VALUES ('leased', t.leased::DOUBLE PRECISION), ('completed', t.completed),
                               ('failed', t.failed), ('cancelled', t.cancelled), ('requeued', t.requeued),
                               ('errors', t.errors), ('crashes', t.crashes), ('unstarted_reaps', t.unstarted_reaps),
                               ('duration_seconds_sum', t.duration_seconds_sum)) AS v(counter, amount)
    WHERE v.amount > 0 OR (v.counter = 'duration_seconds_sum' AND t.completed > 0)
    ORDER BY t.job_type, v.counter
    ON CONFLICT (job_type, counter, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_count_updates AFTER UPDATE ON processing_jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION processing_jobs_count_updates();

-- Start from what the tables hold now (active and archived jobs), so the counters carry on from the
-- figures /metrics showed before this migration.
WITH every_job AS (
    SELECT job_type, status, errors, crashes, started_at, completed_at FROM processing_jobs
    UNION ALL
    SELECT job_type, status, errors, crashes, started_at, completed_at FROM processing_jobs_history
)
INSERT INTO job_counters (job_type, counter, shard, value)
SELECT j.job_type, e.counter, 0, sum(e.amount)
FROM every_job j
CROSS JOIN LATERAL (VALUES
    ('enqueued', 1::DOUBLE PRECISION),
    ('completed', (j.status = 'completed')::INT), ('failed', (j.status = 'failed')::INT),
    ('cancelled', (j.status = 'cancelled')::INT), ('errors', j.errors), ('crashes', j.crashes),
    ('duration_seconds_sum', CASE WHEN j.status = 'completed'
        THEN GREATEST(EXTRACT(EPOCH FROM j.completed_at - j.started_at)::DOUBLE PRECISION, 0) END)
) AS e(counter, amount)
GROUP BY j.job_type, e.counter
HAVING sum(e.amount) > 0;

WITH completed AS (
    SELECT job_type, started_at, completed_at FROM processing_jobs WHERE status = 'completed'
    UNION ALL
    SELECT job_type, started_at, completed_at FROM processing_jobs_history WHERE status = 'completed'
)
INSERT INTO job_duration_buckets (job_type, le, shard, jobs)
SELECT job_type, job_duration_bucket(started_at, completed_at), 0, count(*)
FROM completed
GROUP BY 1, 2;
