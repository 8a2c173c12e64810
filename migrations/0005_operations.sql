-- Operations: the history of finished jobs, the scheduler's record of maintenance runs (one row per task
-- and tick: the guard that makes every tick run once however many schedulers there are), resumable data
-- migrations, one row of daily metrics per story and metric, and monthly images partitions that adopt the
-- rows the default partition caught meanwhile.

-- Finished jobs older than the retention period move here, so processing_jobs stays small. Same columns,
-- no foreign keys and no unique idempotency key (an archived key is history, not a claim).
CREATE TABLE processing_jobs_history (
    LIKE processing_jobs INCLUDING DEFAULTS,
    archived_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id)
);
CREATE INDEX idx_processing_jobs_history_completed ON processing_jobs_history (completed_at);
CREATE INDEX idx_processing_jobs_history_entity ON processing_jobs_history (entity_type, entity_id);
-- The archiver looks for old finished jobs (0004 may have made this index already, for the API).
CREATE INDEX IF NOT EXISTS idx_processing_jobs_finished ON processing_jobs (completed_at)
    WHERE completed_at IS NOT NULL;

-- One row per maintenance task (or recurring job, 'job:NAME') and scheduled tick. Inserting the row is the
-- claim: a second scheduler, or a new leader repeating its predecessor's tick, finds it taken.
CREATE TABLE maintenance_runs (
    task TEXT NOT NULL,
    tick TIMESTAMP WITH TIME ZONE NOT NULL,
    ran_by TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    result JSONB,
    error_message TEXT,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    finished_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (task, tick)
);
CREATE INDEX idx_maintenance_runs_started ON maintenance_runs (started_at);

-- Data migrations resume from a checkpoint written in the same transaction as the batch it follows.
ALTER TABLE data_migrations
    ADD COLUMN checkpoint JSONB,
    ADD COLUMN rows_done BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN rows_total BIGINT,
    ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE;
CREATE UNIQUE INDEX idx_data_migrations_name ON data_migrations (migration_name);

-- Daily metrics are recorded again and again through the day: one row per story, metric and day.
CREATE UNIQUE INDEX idx_story_metrics_daily ON story_metrics (story_id, metric_type, recorded_at)
    WHERE (metadata ->> 'period') = 'day';

-- Like ensure_images_partition, but rows of that month already caught by the default partition (images
-- written before their partition existed) are moved into the new partition instead of making CREATE fail.
-- Serialised by a transaction-level advisory lock, so concurrent callers do not race on CREATE.
CREATE FUNCTION create_images_partition(day DATE) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    start_day DATE := date_trunc('month', day)::DATE;
    end_day DATE := (date_trunc('month', day) + INTERVAL '1 month')::DATE;
    name TEXT := format('images_y%sm%s', to_char(start_day, 'YYYY'), to_char(start_day, 'MM'));
    stray images_default[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('enchant_worker.images_partitions'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    -- Stop inserts into the default partition while its rows of that month move.
    LOCK TABLE images_default IN SHARE ROW EXCLUSIVE MODE;
    SELECT array_agg(d) INTO stray FROM images_default d WHERE d.created_at >= start_day AND d.created_at < end_day;
    IF stray IS NOT NULL THEN
        DELETE FROM images_default WHERE created_at >= start_day AND created_at < end_day;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF images FOR VALUES FROM (%L) TO (%L)', name, start_day, end_day);
    IF stray IS NOT NULL THEN
        INSERT INTO images SELECT * FROM unnest(stray);
    END IF;
    RETURN name;
END $$;
