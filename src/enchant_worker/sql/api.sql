-- api_key_create --
-- A new API key: only its hash is stored.
INSERT INTO api_keys (name, prefix, key_hash, role, user_id)
VALUES (%(name)s, %(prefix)s, %(key_hash)s, %(role)s, %(user_id)s)
RETURNING id, name, prefix, role, user_id, created_at, last_used_at, revoked_at

-- api_key_list --
-- Every key, newest first, without hashes.
SELECT id, name, prefix, role, user_id, created_at, last_used_at, revoked_at
FROM api_keys ORDER BY created_at DESC, id

-- api_key_revoke --
-- Revoke a key by id or by its shown prefix; a revoked key stays listed.
UPDATE api_keys SET revoked_at = NOW()
WHERE (id::TEXT = %(ref)s OR prefix = %(ref)s) AND revoked_at IS NULL
RETURNING id, name, prefix, role

-- api_key_authenticate --
-- The live key with this hash. last_used_at is refreshed at most once a minute, so a busy client
-- does not write on every request.
WITH k AS (
    SELECT id, name, role, user_id FROM api_keys WHERE key_hash = %(key_hash)s AND revoked_at IS NULL
), touched AS (
    UPDATE api_keys SET last_used_at = NOW()
    WHERE id = (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at < NOW() - INTERVAL '1 minute')
)
SELECT * FROM k

-- api_secret --
-- A named secret of the API (e.g. the key that signs pagination cursors).
SELECT secret FROM api_secrets WHERE name = %(name)s

-- api_user_ensure --
-- The user with this email, created when missing (for `keys create --email`).
INSERT INTO users (email, display_name) VALUES (%(email)s, %(email)s)
ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email
RETURNING id

-- api_user_exists --
-- Whether a user id exists.
SELECT EXISTS (SELECT 1 FROM users WHERE id = %(id)s) AS found

-- api_story_collaborators --
-- The collaborators of a story.
SELECT id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status
FROM story_collaborators WHERE story_id = %(story_id)s ORDER BY invited_at, id

-- api_user_by_email --
-- The user with this email: the exact match first, then those matching it case-insensitively (two
-- rows at most, so that an ambiguous spelling is told apart).
SELECT id, email FROM users
WHERE email = %(email)s OR lower(email) = lower(%(email)s)
ORDER BY email = %(email)s DESC, email
LIMIT 2

-- api_story_lock_owner --
-- A story's owner, the story locked until the transaction ends (serialises the invitations to one
-- story, so that a user is invited at most once; NO KEY, so that rows referring to the story are
-- not held up); no row when there is no such story.
SELECT id, user_id AS owner_id FROM stories WHERE id = %(id)s FOR NO KEY UPDATE

-- api_collaborator_of_user --
-- This user's collaboration on a story, whatever its status (the latest when there are several).
SELECT id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status
FROM story_collaborators WHERE story_id = %(story_id)s AND user_id = %(user_id)s
ORDER BY invited_at DESC NULLS LAST, id
LIMIT 1

-- api_collaborator_get --
-- One collaborator of a story (no row when the id is unknown or of another story).
SELECT id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status
FROM story_collaborators WHERE id = %(id)s AND story_id = %(story_id)s

-- api_collaborator_lock --
-- One collaborator of a story, locked until the transaction that changes it ends.
SELECT id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status
FROM story_collaborators WHERE id = %(id)s AND story_id = %(story_id)s
FOR UPDATE

-- api_collaborator_invite --
-- A new, pending invitation.
INSERT INTO story_collaborators (story_id, user_id, role, permissions, invited_by, invited_at, status)
VALUES (%(story_id)s, %(user_id)s, %(role)s, %(permissions)s, %(invited_by)s, NOW(), 'pending')
RETURNING id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status

-- api_collaborator_respond --
-- The invitee accepts or declines: the status, and accepted_at (set on acceptance, cleared otherwise).
UPDATE story_collaborators
SET status = %(status)s, accepted_at = CASE WHEN %(status)s = 'accepted' THEN NOW() END
WHERE id = %(id)s
RETURNING id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status

-- api_collaborator_update --
-- A collaborator's new role and permissions.
UPDATE story_collaborators SET role = %(role)s, permissions = %(permissions)s
WHERE id = %(id)s
RETURNING id, story_id, user_id, role, permissions, invited_by, invited_at, accepted_at, status

-- api_collaborator_delete --
-- Remove a collaborator (or an invitation).
DELETE FROM story_collaborators WHERE id = %(id)s RETURNING id

-- api_story_lock --
-- A story's descriptive fields, locked until the transaction that changes them commits.
SELECT id, title, description, genre, style_preference FROM stories WHERE id = %(id)s FOR UPDATE

-- api_story_update --
-- Change the given descriptive fields of a story (`set_x` says whether x was given, so that a field
-- can be cleared); returns the story's metadata in the cached shape (get_story_metadata).
UPDATE stories SET
    title = CASE WHEN %(set_title)s THEN %(title)s ELSE title END,
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    genre = CASE WHEN %(set_genre)s THEN %(genre)s ELSE genre END,
    style_preference = CASE WHEN %(set_style_preference)s THEN %(style_preference)s ELSE style_preference END,
    updated_at = NOW()
WHERE id = %(id)s
RETURNING id, user_id, title, description, genre, style_preference, created_at, updated_at

-- api_edit_history_add --
-- One entry of the collaborative editing history: who changed which fields of what, from what to what.
INSERT INTO edit_history (entity_type, entity_id, user_id, action_type, changes, comment)
VALUES (%(entity_type)s, %(entity_id)s, %(user_id)s, %(action_type)s, %(changes)s, %(comment)s)
RETURNING id

-- api_user_preferences_set --
-- Replace a user's preferences; no row when there is no such user.
UPDATE users SET preferences = %(preferences)s WHERE id = %(id)s RETURNING preferences

-- api_job_get --
-- One job with the story it belongs to (for collaborator rights).
SELECT j.*, entity_story_id(j.entity_type, j.entity_id) AS story_id
FROM processing_jobs j WHERE j.id = %(id)s

-- api_job_list --
-- One page of jobs, newest first, filtered, limited to what the viewer may read.
SELECT j.*, entity_story_id(j.entity_type, j.entity_id) AS story_id
FROM processing_jobs j
WHERE (%(status)s::TEXT IS NULL OR j.status = %(status)s)
  AND (%(job_type)s::TEXT IS NULL OR j.job_type = %(job_type)s)
  AND (%(user_id)s::UUID IS NULL OR j.user_id = %(user_id)s)
  AND (%(entity_type)s::TEXT IS NULL OR j.entity_type = %(entity_type)s)
  AND (%(entity_id)s::UUID IS NULL OR j.entity_id = %(entity_id)s)
  -- A story's jobs: about the story itself, one of its chapters, scenes, characters, locations or
  -- branches. Each kind's ids are gathered once (ARRAY(...) runs as an init plan), so that every branch
  -- is an idx_processing_jobs_entity lookup (a BitmapOr), never a walk through the whole table.
  AND (%(story_id)s::UUID IS NULL
       OR (j.entity_type = 'story' AND j.entity_id = %(story_id)s)
       OR (j.entity_type = 'chapter'
           AND j.entity_id = ANY(ARRAY(SELECT id FROM chapters WHERE story_id = %(story_id)s)))
       OR (j.entity_type = 'scene' AND j.entity_id = ANY(ARRAY(
               SELECT s.id FROM scenes s JOIN chapters c ON c.id = s.chapter_id WHERE c.story_id = %(story_id)s)))
       OR (j.entity_type = 'character'
           AND j.entity_id = ANY(ARRAY(SELECT id FROM characters WHERE story_id = %(story_id)s)))
       OR (j.entity_type = 'location'
           AND j.entity_id = ANY(ARRAY(SELECT id FROM locations WHERE story_id = %(story_id)s)))
       OR (j.entity_type = 'branch'
           AND j.entity_id = ANY(ARRAY(SELECT id FROM story_branches WHERE parent_story_id = %(story_id)s))))
  AND (%(created_from)s::TIMESTAMPTZ IS NULL OR j.created_at >= %(created_from)s)
  AND (%(created_to)s::TIMESTAMPTZ IS NULL OR j.created_at < %(created_to)s)
  -- A user key sees its user's jobs and the jobs of the stories that user may read (owned, or an
  -- accepted collaboration in any role: every role reads). An admin key passes viewer = NULL.
  AND (%(viewer)s::UUID IS NULL OR j.user_id = %(viewer)s
       OR entity_story_id(j.entity_type, j.entity_id) IN (
           SELECT id FROM stories WHERE user_id = %(viewer)s
           UNION
           SELECT story_id FROM story_collaborators WHERE user_id = %(viewer)s AND status = 'accepted'))
  -- Keyset pagination: strictly after the last row of the previous page, in (created_at, id) order.
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (j.created_at, j.id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s

-- api_queue_counts --
-- How many jobs are in each status, per job type.
SELECT job_type, status, count(*)::INT AS n FROM processing_jobs GROUP BY job_type, status ORDER BY job_type, status

-- api_queue_oldest_pending --
-- Age of the oldest runnable pending job, per job type.
SELECT job_type, EXTRACT(EPOCH FROM NOW() - min(created_at))::FLOAT8 AS age_s
FROM processing_jobs WHERE status = 'pending' AND run_after <= NOW()
GROUP BY job_type ORDER BY job_type

-- api_queue_throughput --
-- Jobs finished per minute over the last `minutes` minutes, oldest minute first (empty minutes as 0).
SELECT m.minute,
       count(j.id) FILTER (WHERE j.status = 'completed')::INT AS completed,
       count(j.id) FILTER (WHERE j.status = 'failed')::INT AS failed
FROM generate_series(date_trunc('minute', NOW()) - make_interval(mins => %(minutes)s - 1),
                     date_trunc('minute', NOW()), INTERVAL '1 minute') AS m(minute)
LEFT JOIN processing_jobs j
       ON j.completed_at >= m.minute AND j.completed_at < m.minute + INTERVAL '1 minute'
      AND j.status IN ('completed', 'failed')
GROUP BY m.minute ORDER BY m.minute

-- api_queue_run_times --
-- Median and 95th percentile run time (lease to completion of the last attempt) per job type, over
-- the jobs completed in the last `minutes` minutes.
SELECT job_type, count(*)::INT AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - started_at)) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - started_at)) AS p95_s
FROM processing_jobs
WHERE status = 'completed' AND started_at IS NOT NULL AND completed_at > NOW() - make_interval(mins => %(minutes)s)
GROUP BY job_type ORDER BY job_type

-- api_recent_failures --
-- The latest failed jobs with their messages.
SELECT id, job_type, error_message, attempts, max_attempts, errors, crashes, completed_at, user_id
FROM processing_jobs WHERE status = 'failed'
ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT %(limit)s

-- api_workers --
-- Workers with the jobs they run now (progress, how long ago each was leased) and heartbeat age.
SELECT w.*, EXTRACT(EPOCH FROM NOW() - w.heartbeat_at)::FLOAT8 AS heartbeat_age_s,
       COALESCE((
           SELECT json_agg(json_build_object(
                      'id', j.id, 'job_type', j.job_type, 'progress_percent', j.progress_percent,
                      'progress', j.progress,
                      'lease_age_s', EXTRACT(EPOCH FROM NOW() - j.started_at)::FLOAT8,
                      'lease_expires_in_s', EXTRACT(EPOCH FROM j.lease_expires_at - NOW())::FLOAT8)
                  ORDER BY j.started_at)
           FROM processing_jobs j WHERE j.id = ANY(w.current_job_ids) AND j.status = 'processing'
       ), '[]'::JSON) AS current_jobs
FROM workers w
WHERE %(include_stopped)s OR w.status <> 'stopped'
ORDER BY w.id

-- api_job_counters --
-- The transition counters of every job type (see migration 0014), their shards summed: they only ever
-- increase, whatever retries and archiving do to the rows.
SELECT job_type, counter, sum(value)::FLOAT8 AS value FROM job_counters GROUP BY job_type, counter
ORDER BY job_type, counter

-- api_job_duration_buckets --
-- The run-time histogram of completed jobs per job type, as Prometheus wants it: for every bound (seconds,
-- 'Infinity' last), how many took at most that long.
WITH per_bucket AS (
    -- Jobs per bucket, the shards summed.
    SELECT job_type, le, sum(jobs) AS jobs FROM job_duration_buckets GROUP BY job_type, le
)
SELECT t.job_type, u.le,
       (sum(COALESCE(p.jobs, 0)) OVER (PARTITION BY t.job_type ORDER BY u.le))::BIGINT AS jobs
FROM (SELECT DISTINCT job_type FROM per_bucket) AS t
CROSS JOIN unnest(job_duration_bounds()) AS u(le)
LEFT JOIN per_bucket p ON p.job_type = t.job_type AND p.le = u.le
ORDER BY t.job_type, u.le

-- api_lora_create --
-- A LoRA that is about to be trained.
INSERT INTO lora_models (id, user_id, name, description, model_file_url, trigger_words, training_images_count,
                         status)
VALUES (%(id)s, %(user_id)s, %(name)s, %(description)s, %(model_file_url)s, %(trigger_words)s, %(training_images_count)s,
        'training')
RETURNING *

-- api_lora_get --
-- One LoRA with its training job (api_lora_list says how).
SELECT l.*, t.job_id, t.job_status, t.base_model, t.preview_image_id
FROM lora_models l
LEFT JOIN LATERAL (
    SELECT j.id AS job_id, j.status AS job_status, j.metadata->>'base_model' AS base_model,
           j.result->>'preview_image_id' AS preview_image_id
    FROM processing_jobs j
    WHERE j.id = l.training_job_id OR (j.entity_type = 'lora_model' AND j.entity_id = l.id AND j.job_type = 'train_lora')
    ORDER BY j.id = l.training_job_id DESC, j.created_at DESC LIMIT 1
) t ON TRUE
WHERE l.id = %(id)s

-- api_lora_list --
-- One page of LoRAs the viewer may see (their own and the public ones; all for an admin), newest
-- first, filtered, each with its training job: the one the worker recorded, else the latest
-- train_lora job about it (a queued job has not been recorded yet; idx_processing_jobs_entity).
SELECT l.*, t.job_id, t.job_status, t.base_model, t.preview_image_id
FROM lora_models l
LEFT JOIN LATERAL (
    SELECT j.id AS job_id, j.status AS job_status, j.metadata->>'base_model' AS base_model,
           j.result->>'preview_image_id' AS preview_image_id
    FROM processing_jobs j
    WHERE j.id = l.training_job_id OR (j.entity_type = 'lora_model' AND j.entity_id = l.id AND j.job_type = 'train_lora')
    ORDER BY j.id = l.training_job_id DESC, j.created_at DESC LIMIT 1
) t ON TRUE
WHERE (%(viewer)s::UUID IS NULL OR l.user_id = %(viewer)s OR l.is_public)
  AND (%(status)s::TEXT IS NULL OR l.status = %(status)s)
  AND (%(owner)s::UUID IS NULL OR l.user_id = %(owner)s)
  AND (%(is_public)s::BOOLEAN IS NULL OR COALESCE(l.is_public, FALSE) = %(is_public)s)
  AND (NOT %(mine_only)s OR l.user_id = %(me)s)
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (l.created_at, l.id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY l.created_at DESC, l.id DESC
LIMIT %(limit)s

-- api_lora_set_public --
-- Publish or unpublish a LoRA.
UPDATE lora_models SET is_public = %(is_public)s WHERE id = %(id)s RETURNING *

-- api_lora_count_download --
-- Count one download.
UPDATE lora_models SET download_count = COALESCE(download_count, 0) + 1 WHERE id = %(id)s RETURNING *

-- api_preset_create --
-- A new generation preset.
INSERT INTO generation_presets (user_id, name, description, provider, model_name, parameters, style_modifiers, is_public)
VALUES (%(user_id)s, %(name)s, %(description)s, %(provider)s, %(model_name)s, %(parameters)s, %(style_modifiers)s,
        %(is_public)s)
RETURNING *

-- api_preset_get --
-- One preset.
SELECT * FROM generation_presets WHERE id = %(id)s

-- api_preset_list --
-- One page of presets the viewer may see (their own and the public ones; all for an admin), newest
-- first, filtered by owner and public flag.
SELECT * FROM generation_presets
WHERE (%(viewer)s::UUID IS NULL OR user_id = %(viewer)s OR is_public)
  AND (%(owner)s::UUID IS NULL OR user_id = %(owner)s)
  AND (%(is_public)s::BOOLEAN IS NULL OR COALESCE(is_public, FALSE) = %(is_public)s)
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (created_at, id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- api_preset_update --
-- Change the given fields of a preset (a NULL parameter leaves its column alone; `set_description`
-- distinguishes clearing the description from not touching it).
UPDATE generation_presets SET
    name = COALESCE(%(name)s, name),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    provider = COALESCE(%(provider)s, provider),
    model_name = COALESCE(%(model_name)s, model_name),
    parameters = COALESCE(%(parameters)s, parameters),
    style_modifiers = COALESCE(%(style_modifiers)s, style_modifiers),
    is_public = COALESCE(%(is_public)s, is_public)
WHERE id = %(id)s
RETURNING *

-- api_preset_delete --
-- Delete a preset.
DELETE FROM generation_presets WHERE id = %(id)s RETURNING id

-- api_image_get --
-- One image's metadata with the story it belongs to (through its scene).
SELECT i.*, entity_story_id('scene', i.scene_id) AS story_id FROM images i WHERE i.id = %(id)s
ORDER BY i.created_at DESC LIMIT 1

-- api_image_list --
-- One page of images the viewer may see (their own and those of stories they may read), newest
-- first, filtered by job, scene, story, LoRA (one it was made with, or the LoRA it previews),
-- creation time [created_from, created_to) and quality score (at least min_quality; unscored images are
-- left out when it is set).
SELECT i.*, entity_story_id('scene', i.scene_id) AS story_id FROM images i
WHERE (%(viewer)s::UUID IS NULL OR i.user_id = %(viewer)s
       OR entity_story_id('scene', i.scene_id) IN (
           SELECT id FROM stories WHERE user_id = %(viewer)s
           UNION
           SELECT story_id FROM story_collaborators WHERE user_id = %(viewer)s AND status = 'accepted'))
  AND (%(job_id)s::UUID IS NULL OR i.job_id = %(job_id)s)
  AND (%(scene_id)s::UUID IS NULL OR i.scene_id = %(scene_id)s)
  -- a story's images: those of its scenes (the scenes are few; idx_images_scene finds their images)
  AND (%(story_id)s::UUID IS NULL OR i.scene_id IN (
           SELECT s.id FROM scenes s JOIN chapters c ON c.id = s.chapter_id WHERE c.story_id = %(story_id)s))
  AND (%(lora_id)s::TEXT IS NULL
       OR i.parameters->'loras' @> jsonb_build_array(jsonb_build_object('lora_model_id', %(lora_id)s::TEXT))
       OR i.parameters->>'lora_model_id' = %(lora_id)s::TEXT)
  AND (%(created_from)s::TIMESTAMPTZ IS NULL OR i.created_at >= %(created_from)s)
  AND (%(created_to)s::TIMESTAMPTZ IS NULL OR i.created_at < %(created_to)s)
  AND (%(min_quality)s::REAL IS NULL OR i.quality_score >= %(min_quality)s::REAL)
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (i.created_at, i.id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY i.created_at DESC, i.id DESC
LIMIT %(limit)s

-- api_ping --
-- The database answers.
SELECT 1 AS ok

-- api_upload_get --
-- One upload.
SELECT id, user_id, purpose, folder, file_count, total_bytes, created_at FROM uploads WHERE id = %(id)s

-- compat_options_get --
-- The options an AUTOMATIC1111 client set for this caller (none: the defaults).
SELECT options FROM api_client_options WHERE principal = %(principal)s

-- compat_options_merge --
-- Merge options into this caller's (a key set again replaces its value).
INSERT INTO api_client_options (principal, options) VALUES (%(principal)s, %(options)s)
ON CONFLICT (principal) DO UPDATE
SET options = api_client_options.options || EXCLUDED.options, updated_at = NOW()
RETURNING options

-- compat_loras --
-- The LoRAs a caller may apply by name: their own and public ones, ready (admins: all ready ones), one
-- per file stem (the name AUTOMATIC1111 lists; `<lora:STEM:W>` resolves to the same row).
SELECT DISTINCT ON (stem) id, name, stem, model_file_url, trigger_words, is_public
FROM (SELECT *, coalesce(substring(model_file_url FROM '([^/]+)\.safetensors$'), name) AS stem
      FROM lora_models
      WHERE status = 'ready' AND (is_public OR %(admin)s OR user_id = %(user_id)s::uuid)) AS usable
ORDER BY stem, (user_id IS NOT DISTINCT FROM %(user_id)s::uuid) DESC, created_at DESC

-- compat_active_jobs --
-- This caller's generate_image jobs waiting or running, running first (for /sdapi/v1/progress).
SELECT id, status, progress_percent, progress, metadata, started_at, created_at
FROM processing_jobs
WHERE job_type = 'generate_image' AND status IN ('pending', 'processing')
  AND user_id IS NOT DISTINCT FROM %(user_id)s::uuid
ORDER BY (status = 'processing') DESC, created_at
LIMIT 100

-- api_image_costs --
-- What each user's completed generate_image jobs cost, by provider (the job's result records its cost).
SELECT COALESCE(user_id::TEXT, 'none') AS user_id, result->>'provider' AS provider,
       sum((result->>'cost')::FLOAT8)::FLOAT8 AS cost, sum(jsonb_array_length(result->'images'))::INT AS images
FROM processing_jobs
WHERE job_type = 'generate_image' AND status = 'completed' AND result ? 'cost'
GROUP BY 1, 2 ORDER BY 1, 2

-- api_job_actions --
-- The console actions taken on a job, oldest first (who, what, from which state to which).
SELECT id, job_id, action, key_id, key_name, user_id, from_status, to_status, detail, bulk, created_at
FROM job_actions WHERE job_id = %(job_id)s ORDER BY created_at, id

-- api_job_action_record --
-- Record one action on a job and who took it.
INSERT INTO job_actions (job_id, action, key_id, key_name, user_id, from_status, to_status, detail, bulk)
VALUES (%(job_id)s, %(action)s, %(key_id)s, %(key_name)s, %(user_id)s, %(from_status)s, %(to_status)s,
        %(detail)s, %(bulk)s)
RETURNING id

-- api_job_progress_history --
-- A job's progress reports over time (stages, steps, loss), oldest first; the latest `limit`.
SELECT attempt, at, percent, progress FROM (
    SELECT attempt, at, percent, progress FROM job_progress_history
    WHERE job_id = %(job_id)s ORDER BY at DESC LIMIT %(limit)s
) h ORDER BY at

-- api_queue_throughput_binned --
-- Jobs finished (completed, failed) per bucket of `bucket_s` seconds over the last `minutes` minutes,
-- oldest first, empty buckets as 0. Reads idx_processing_jobs_finished (completed_at) only for the window.
WITH bins AS (
    SELECT b AS start
    FROM generate_series(date_bin(make_interval(secs => %(bucket_s)s), NOW() - make_interval(mins => %(minutes)s),
                                  TIMESTAMPTZ '2000-01-01'),
                         NOW(), make_interval(secs => %(bucket_s)s)) AS b
), done AS (
    SELECT date_bin(make_interval(secs => %(bucket_s)s), completed_at, TIMESTAMPTZ '2000-01-01') AS start,
           count(*) FILTER (WHERE status = 'completed')::INT AS completed,
           count(*) FILTER (WHERE status = 'failed')::INT AS failed
    FROM processing_jobs
    -- the range alone (the FILTERs above pick the states): an index-only scan of idx_processing_jobs_finished
    WHERE completed_at >= NOW() - make_interval(mins => %(minutes)s) - make_interval(secs => %(bucket_s)s)
    GROUP BY 1
)
SELECT bins.start, COALESCE(done.completed, 0) AS completed, COALESCE(done.failed, 0) AS failed
FROM bins LEFT JOIN done USING (start) ORDER BY bins.start

-- api_scheduler_tasks --
-- Every maintenance task's latest run and its failures over the last day.
SELECT DISTINCT ON (task) task, tick, ran_by, status, error_message, started_at, finished_at,
       (SELECT count(*) FROM maintenance_runs f
        WHERE f.task = r.task AND f.status = 'failed' AND f.started_at > NOW() - INTERVAL '1 day')::INT AS failures_1d
FROM maintenance_runs r
ORDER BY task, tick DESC

-- api_scheduler_failures --
-- The latest failed maintenance runs.
SELECT task, tick, ran_by, error_message, started_at, finished_at FROM maintenance_runs
WHERE status = 'failed' ORDER BY started_at DESC LIMIT %(limit)s

-- api_job_ids_matching --
-- The ids of the jobs a bulk action applies to: the console's filters, at most `limit`, newest first.
SELECT j.id, j.status FROM processing_jobs j
WHERE (%(status)s::TEXT IS NULL OR j.status = %(status)s)
  AND (%(job_type)s::TEXT IS NULL OR j.job_type = %(job_type)s)
  AND (%(user_id)s::UUID IS NULL OR j.user_id = %(user_id)s)
  AND (%(story_id)s::UUID IS NULL OR entity_story_id(j.entity_type, j.entity_id) = %(story_id)s)
  AND (%(created_from)s::TIMESTAMPTZ IS NULL OR j.created_at >= %(created_from)s)
  AND (%(created_to)s::TIMESTAMPTZ IS NULL OR j.created_at < %(created_to)s)
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s

-- api_job_id_range --
-- Jobs whose id lies in a range: the console's search by the first characters of an id (the primary
-- key's index; the range is the prefix padded with 0s and with fs).
SELECT j.*, entity_story_id(j.entity_type, j.entity_id) AS story_id
FROM processing_jobs j WHERE j.id BETWEEN %(low)s AND %(high)s
ORDER BY j.id LIMIT %(limit)s

-- api_workers_serving --
-- How many running workers, heard from within `live_s` seconds, serve a job type.
SELECT count(*)::INT AS n FROM workers
WHERE status = 'running' AND heartbeat_at > NOW() - make_interval(secs => %(live_s)s)
  AND %(job_type)s = ANY(job_types)

-- api_console_counts --
-- The console's depth per job type and state: pending and processing jobs all (the queue index's
-- partial rows), finished ones over the last 24 hours (idx_processing_jobs_finished), so that the
-- overview never counts the whole table's history (a million rows would take a sequential scan).
SELECT job_type, status, count(*)::INT AS n FROM processing_jobs
WHERE status IN ('pending', 'processing')
GROUP BY job_type, status
UNION ALL
-- Finished: only the completion-time range is a condition (an index-only scan of idx_processing_jobs_finished,
-- which carries type and state); the state is picked after grouping (OFFSET 0 keeps the planner from
-- pushing it down, where it would pick the state's index and walk the whole history instead).
SELECT job_type, status, n FROM (
    SELECT job_type, status, count(*)::INT AS n FROM processing_jobs
    WHERE completed_at >= NOW() - INTERVAL '24 hours'
    GROUP BY job_type, status OFFSET 0
) finished WHERE status IN ('completed', 'failed', 'cancelled')
ORDER BY job_type, status

-- api_console_failures --
-- The latest failed jobs with their messages, newest first: walks idx_processing_jobs_finished backwards
-- (its rows carry the state), so it reads only the few rows it shows.
SELECT id, job_type, error_message, attempts, max_attempts, errors, crashes, completed_at, user_id
FROM processing_jobs WHERE status = 'failed' AND completed_at IS NOT NULL
ORDER BY completed_at DESC LIMIT %(limit)s

-- listen_job_done --
-- The API's wake-ups for requests waiting on a job (the trigger of migration 0093 notifies its id).
LISTEN enchant_done
