-- try_scheduler_lock --
-- Become the scheduler leader: the session-level advisory lock (class 4550243 'Enc', id 1) is held for as
-- long as this connection lives, and released by Postgres when the leader's session ends.
SELECT pg_try_advisory_lock(4550243, 1) AS acquired

-- release_scheduler_lock --
-- Step down (a clean shutdown hands leadership over at once).
SELECT pg_advisory_unlock(4550243, 1) AS released

-- scheduler_leader --
-- Who leads now: the application_name of the session holding the scheduler lock, if any.
SELECT a.application_name AS leader, a.pid, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = 4550243 AND l.objid = 1 AND l.objsubid = 2 AND l.granted

-- set_session_keepalives --
-- The server notices a leader whose host vanished within about 10 s and frees its lock (user-settable).
SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '2', false),
       set_config('tcp_keepalives_count', '3', false)

-- claim_tick --
-- Claim one tick of a task; no row back means another scheduler (or an earlier leader) has it already.
INSERT INTO maintenance_runs (task, tick, ran_by) VALUES (%(task)s, %(tick)s, %(ran_by)s)
ON CONFLICT (task, tick) DO NOTHING
RETURNING task, tick

-- finish_run --
-- Record how a claimed run ended.
UPDATE maintenance_runs
SET status = %(status)s, result = %(result)s, error_message = %(error)s, finished_at = NOW()
WHERE task = %(task)s AND tick = %(tick)s

-- last_runs --
-- The latest run of every task, for `maintenance list`.
SELECT DISTINCT ON (task) task, tick, ran_by, status, result, error_message, started_at, finished_at
FROM maintenance_runs
ORDER BY task, tick DESC

-- prune_runs --
-- Forget maintenance runs older than the given age.
DELETE FROM maintenance_runs WHERE started_at < NOW() - make_interval(secs => %(keep_s)s)

-- create_images_partitions --
-- Create the monthly images partitions of this month and the next `ahead` months (missing ones only);
-- rows of those months caught by the default partition move into their partition.
SELECT create_images_partition((date_trunc('month', NOW() AT TIME ZONE 'UTC') + make_interval(months => m))::DATE)
       AS partition
FROM generate_series(0, %(ahead)s) AS m

-- statistics_populated --
-- Is story_statistics populated (CONCURRENTLY needs it to be)?
SELECT ispopulated FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = 'story_statistics'

-- refresh_statistics_concurrently --
-- Rebuild story_statistics without blocking its readers (needs the unique index on id).
REFRESH MATERIALIZED VIEW CONCURRENTLY story_statistics

-- refresh_statistics --
-- First fill of an unpopulated story_statistics (blocks readers; only once).
REFRESH MATERIALIZED VIEW story_statistics

-- archive_finished_jobs --
-- Move up to `limit` jobs that finished more than `older_than_s` ago into processing_jobs_history, in one
-- statement: the DELETE and the INSERT commit together, so a job is never lost nor archived twice.
WITH old AS (
    -- Finished long enough ago; SKIP LOCKED leaves rows someone is touching for the next run.
    SELECT id FROM processing_jobs
    WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < NOW() - make_interval(secs => %(older_than_s)s)
    ORDER BY completed_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM processing_jobs j USING old WHERE j.id = old.id
    RETURNING j.id, j.job_type, j.entity_type, j.entity_id, j.user_id, j.metadata, j.status, j.priority,
              j.attempts, j.max_attempts, j.errors, j.crashes, j.run_after, j.leased_by, j.lease_expires_at,
              j.lease_token, j.heartbeat_at, j.progress_percent, j.progress, j.cancel_requested, j.result,
              j.error_message, j.idempotency_key, j.created_at, j.started_at, j.completed_at, j.run_started,
              j.unstarted_reaps
)
INSERT INTO processing_jobs_history
    (id, job_type, entity_type, entity_id, user_id, metadata, status, priority, attempts, max_attempts, errors,
     crashes, run_after, leased_by, lease_expires_at, lease_token, heartbeat_at, progress_percent, progress,
     cancel_requested, result, error_message, idempotency_key, created_at, started_at, completed_at, run_started,
     unstarted_reaps)
SELECT * FROM moved

-- record_story_metrics --
-- Upsert the daily metrics of every story with activity on the UTC days [from_day, to_day]: images
-- generated, GPU seconds (images.timings gpu_s, else the sum of its adapters/encode/denoise/decode
-- seconds), mean seconds per image, and failed generation jobs (active and archived).
WITH span AS (
    SELECT %(from_day)s::date AS first_day, %(to_day)s::date AS last_day
), generated AS (
    -- Images per story and day, with the GPU time each one took.
    SELECT ch.story_id, (i.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS images,
           sum(t.gpu_s) AS gpu_seconds, avg(t.gpu_s) AS mean_seconds
    FROM span, images i
    JOIN scenes s ON s.id = i.scene_id
    JOIN chapters ch ON ch.id = s.chapter_id
    CROSS JOIN LATERAL (
        SELECT COALESCE(
            CASE WHEN jsonb_typeof(i.timings -> 'gpu_s') = 'number' THEN (i.timings -> 'gpu_s')::numeric END,
            (SELECT sum(v.value::numeric) FROM jsonb_each(i.timings) v
             WHERE v.key IN ('adapters_s', 'encode_s', 'denoise_s', 'decode_s') AND jsonb_typeof(v.value) = 'number')
        ) AS gpu_s
    ) t
    WHERE i.created_at >= (span.first_day::timestamp AT TIME ZONE 'UTC')
      AND i.created_at < ((span.last_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2
), failed_jobs AS (
    -- Generation jobs that failed for good, active or archived; the story through the scene they were for.
    SELECT entity_type, entity_id, metadata, completed_at FROM processing_jobs
    WHERE job_type = 'generate_image' AND status = 'failed'
    UNION ALL
    SELECT entity_type, entity_id, metadata, completed_at FROM processing_jobs_history
    WHERE job_type = 'generate_image' AND status = 'failed'
), failures AS (
    SELECT COALESCE(ch.story_id, CASE WHEN f.entity_type = 'story' THEN f.entity_id END) AS story_id,
           (f.completed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS failures
    FROM span, failed_jobs f
    LEFT JOIN scenes s ON s.id = CASE
        WHEN f.entity_type = 'scene' THEN f.entity_id
        WHEN f.metadata ->> 'scene_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN (f.metadata ->> 'scene_id')::uuid END
    LEFT JOIN chapters ch ON ch.id = s.chapter_id
    WHERE f.completed_at >= (span.first_day::timestamp AT TIME ZONE 'UTC')
      AND f.completed_at < ((span.last_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2
), daily AS (
    SELECT COALESCE(g.story_id, f.story_id) AS story_id, COALESCE(g.day, f.day) AS day,
           COALESCE(g.images, 0) AS images, COALESCE(g.gpu_seconds, 0) AS gpu_seconds,
           g.mean_seconds, COALESCE(f.failures, 0) AS failures
    FROM generated g FULL JOIN failures f ON f.story_id = g.story_id AND f.day = g.day
), metrics AS (
    -- One row per metric; a story that still exists only (the metric refers to it).
    SELECT d.story_id, d.day, m.metric_type, m.value
    FROM daily d
    JOIN stories st ON st.id = d.story_id
    CROSS JOIN LATERAL (VALUES ('images_generated', d.images::numeric), ('gpu_seconds', d.gpu_seconds),
                               ('mean_seconds_per_image', d.mean_seconds), ('failures', d.failures::numeric))
        AS m(metric_type, value)
)
INSERT INTO story_metrics (story_id, metric_type, metric_value, metadata, recorded_at)
SELECT story_id, metric_type, value, jsonb_build_object('period', 'day', 'day', day),
       day::timestamp AT TIME ZONE 'UTC'
FROM metrics
ON CONFLICT (story_id, metric_type, recorded_at) WHERE (metadata ->> 'period') = 'day'
DO UPDATE SET metric_value = EXCLUDED.metric_value, metadata = EXCLUDED.metadata
RETURNING story_id

-- first_image_day --
-- The UTC day of the oldest image (where a metrics backfill starts).
SELECT (min(created_at) AT TIME ZONE 'UTC')::date AS day FROM images

-- register_data_migration --
-- Make sure a data migration has its row (versions refreshed from the code); returns it.
INSERT INTO data_migrations (migration_name, from_version, to_version)
VALUES (%(name)s, %(from_version)s, %(to_version)s)
ON CONFLICT (migration_name) DO UPDATE SET from_version = EXCLUDED.from_version, to_version = EXCLUDED.to_version
RETURNING *

-- start_data_migration --
-- A run begins or resumes: running, error cleared, the size of the work recorded.
UPDATE data_migrations
SET status = 'running', started_at = COALESCE(started_at, NOW()), completed_at = NULL, error_message = NULL,
    rows_total = %(total)s, updated_at = NOW(),
    progress_percent = CASE WHEN %(total)s > 0 THEN LEAST(99, rows_done * 100 / %(total)s) ELSE 0 END
WHERE migration_name = %(name)s
RETURNING *

-- lock_data_migration --
-- Inside a batch's transaction: the checkpoint to continue from, locked so concurrent runners take turns.
SELECT status, checkpoint, rows_done, rows_total FROM data_migrations WHERE migration_name = %(name)s FOR UPDATE

-- advance_data_migration --
-- Inside the same transaction as the batch: move the checkpoint and the progress past it.
UPDATE data_migrations
SET checkpoint = %(checkpoint)s, rows_done = rows_done + %(rows)s, updated_at = NOW(),
    progress_percent = CASE WHEN COALESCE(rows_total, 0) > 0
                            THEN LEAST(99, (rows_done + %(rows)s) * 100 / rows_total) ELSE progress_percent END
WHERE migration_name = %(name)s
RETURNING progress_percent, rows_done

-- complete_data_migration --
-- Every batch is done.
UPDATE data_migrations
SET status = 'completed', progress_percent = 100, completed_at = NOW(), error_message = NULL, updated_at = NOW()
WHERE migration_name = %(name)s

-- fail_data_migration --
-- A batch raised: the migration is failed with its message; the batches before it stay committed.
UPDATE data_migrations SET status = 'failed', error_message = %(error)s, updated_at = NOW()
WHERE migration_name = %(name)s

-- pause_data_migration --
-- The run stopped early (cancelled or shut down); it continues from its checkpoint when run again.
UPDATE data_migrations SET status = 'pending', updated_at = NOW() WHERE migration_name = %(name)s

-- get_data_migration --
-- One data migration's row.
SELECT * FROM data_migrations WHERE migration_name = %(name)s

-- list_data_migrations --
-- Every data migration row, by name.
SELECT * FROM data_migrations ORDER BY migration_name

-- get_user_preferences --
-- A user's preferences (cached 300 s).
SELECT preferences FROM users WHERE id = %(id)s

-- get_story_metadata --
-- What the prompt builder and the API show of a story (cached 3600 s).
SELECT id, user_id, title, description, genre, style_preference, created_at, updated_at
FROM stories WHERE id = %(id)s

-- take_scheduler_lease --
-- Become or stay the leader through the lease row: renews it when we hold it, takes it when it expired
-- (or, for a holder of the advisory lock, when the previous holder led through the lock). A row back means
-- we lead until expires_at; none means someone else does.
INSERT INTO scheduler_lease (name, holder, via_lock, expires_at)
VALUES ('scheduler', %(holder)s, %(via_lock)s, NOW() + make_interval(secs => %(ttl_s)s))
ON CONFLICT (name) DO UPDATE
SET holder = EXCLUDED.holder, via_lock = EXCLUDED.via_lock, expires_at = EXCLUDED.expires_at,
    acquired_at = CASE WHEN scheduler_lease.holder = EXCLUDED.holder THEN scheduler_lease.acquired_at ELSE NOW() END
WHERE scheduler_lease.holder = EXCLUDED.holder OR scheduler_lease.expires_at < NOW()
   OR (EXCLUDED.via_lock AND scheduler_lease.via_lock)
RETURNING holder, expires_at

-- release_scheduler_lease --
-- Step down from the lease row (a clean shutdown hands leadership over at once).
DELETE FROM scheduler_lease WHERE name = 'scheduler' AND holder = %(holder)s

-- scheduler_lease_holder --
-- Who leads through the lease row now, if anyone.
SELECT holder AS leader FROM scheduler_lease WHERE name = 'scheduler' AND expires_at > NOW()
