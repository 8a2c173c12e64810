-- intake_story_access --
-- A story's owner, this user's accepted collaboration on it (NULL columns when none) and whether it is
-- published in the community; no row when the story does not exist.
SELECT s.id, s.user_id AS owner_id, c.role AS collaborator_role, c.permissions,
       EXISTS (SELECT 1 FROM community_stories p WHERE p.story_id = s.id) AS published
FROM stories s
LEFT JOIN story_collaborators c ON c.story_id = s.id AND c.user_id = %(user_id)s AND c.status = 'accepted'
WHERE s.id = %(story_id)s
ORDER BY c.invited_at DESC NULLS LAST
LIMIT 1

-- intake_entity_story --
-- The story a story-bound row (story, chapter, scene, character, location, branch) belongs to; NULL
-- when there is no such row of that kind.
SELECT entity_story_id(%(kind)s, %(id)s) AS story_id

-- intake_image --
-- An image's owner and the story of its scene (for rights).
SELECT i.id, i.user_id, entity_story_id('scene', i.scene_id) AS story_id
FROM images i WHERE i.id = %(id)s LIMIT 1

-- intake_preset --
-- A generation preset by id, or by name among those this user may use (theirs or public; an admin
-- any): theirs first, newest first. `usable` tells apart a preset that exists but is not the user's.
SELECT id, user_id, name, is_public,
       (%(admin)s OR is_public OR user_id = %(user_id)s::uuid) AS usable
FROM generation_presets
WHERE (id = %(id)s::uuid)
   OR (%(id)s::uuid IS NULL AND name = %(name)s AND (%(admin)s OR is_public OR user_id = %(user_id)s::uuid))
ORDER BY (user_id IS NOT DISTINCT FROM %(user_id)s::uuid) DESC, created_at DESC
LIMIT 1

-- intake_lora --
-- A LoRA by id, or by name or file stem (the `<lora:NAME:W>` a PNG names) among those this user may use
-- (theirs or public; an admin any): theirs first, an exact name before a stem, ready first, newest
-- first. `usable` tells apart a LoRA that exists but is not the user's.
SELECT id, user_id, name, status, is_public,
       (%(admin)s OR is_public OR user_id = %(user_id)s::uuid) AS usable
FROM lora_models
WHERE (id = %(id)s::uuid)
   OR (%(id)s::uuid IS NULL AND (name = %(name)s OR substring(model_file_url FROM '([^/]+)\.safetensors$') = %(name)s)
       AND (%(admin)s OR is_public OR user_id = %(user_id)s::uuid))
ORDER BY (user_id IS NOT DISTINCT FROM %(user_id)s::uuid) DESC, (name = %(name)s) DESC, (status = 'ready') DESC,
         created_at DESC
LIMIT 1

-- intake_upload --
-- An upload by id, with its owner and folder (relative to storage).
SELECT id, user_id, purpose, folder, file_count FROM uploads WHERE id = %(id)s

-- intake_upload_create --
-- Record an upload whose files are already in its folder.
INSERT INTO uploads (id, user_id, purpose, folder, file_count, total_bytes)
VALUES (%(id)s, %(user_id)s, %(purpose)s, %(folder)s, %(file_count)s, %(total_bytes)s)
RETURNING id, user_id, purpose, folder, file_count, total_bytes, created_at

-- intake_user --
-- A user's tier and quota overrides, and whether the user holds a live admin key (then the worker
-- re-checks their jobs as an admin's). No row when there is no such user.
SELECT u.id, u.subscription_tier, u.quota_overrides,
       EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = u.id AND k.role = 'admin' AND k.revoked_at IS NULL)
           AS is_admin
FROM users u WHERE u.id = %(id)s

-- intake_lock_user --
-- Serialise the enqueues of one user until the transaction ends, so that two requests cannot both pass
-- a quota with one slot left.
SELECT pg_advisory_xact_lock(hashtextextended('enchant-quota:' || %(user_id)s::text, 0))

-- intake_active_jobs --
-- How many of a user's jobs wait or run now.
SELECT count(*) AS n FROM processing_jobs
WHERE user_id = %(user_id)s AND status IN ('pending', 'processing')

-- intake_usage --
-- What a user enqueued today (UTC), by kind.
SELECT kind, amount FROM user_usage WHERE user_id = %(user_id)s AND day = (NOW() AT TIME ZONE 'UTC')::date

-- intake_usage_add --
-- Count what a user just enqueued against today's quota.
INSERT INTO user_usage (user_id, day, kind, amount)
VALUES (%(user_id)s, (NOW() AT TIME ZONE 'UTC')::date, %(kind)s, %(amount)s)
ON CONFLICT (user_id, day, kind) DO UPDATE SET amount = user_usage.amount + EXCLUDED.amount

-- intake_seconds_to_midnight --
-- Seconds until the daily quotas start again (midnight UTC).
SELECT ceil(extract(epoch FROM (date_trunc('day', NOW() AT TIME ZONE 'UTC') + interval '1 day')
                              - (NOW() AT TIME ZONE 'UTC')))::int AS s

-- intake_set_tier --
-- An admin sets a user's tier and quota overrides (NULL leaves one as it is).
UPDATE users
SET subscription_tier = COALESCE(%(tier)s, subscription_tier),
    quota_overrides = COALESCE(%(overrides)s::jsonb, quota_overrides)
WHERE id = %(id)s
RETURNING id, email, subscription_tier, quota_overrides

-- intake_users --
-- Users with their tier, overrides and today's usage (admins' view), newest first, from a keyset position.
SELECT u.id, u.email, u.display_name, u.subscription_tier, u.quota_overrides, u.created_at,
       COALESCE((SELECT jsonb_object_agg(kind, amount) FROM user_usage
                 WHERE user_id = u.id AND day = (NOW() AT TIME ZONE 'UTC')::date), '{}') AS usage_today,
       (SELECT count(*) FROM processing_jobs j WHERE j.user_id = u.id AND j.status IN ('pending', 'processing'))
           AS active_jobs
FROM users u
WHERE (%(id)s::uuid IS NULL OR u.id = %(id)s)
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (u.created_at, u.id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY u.created_at DESC, u.id DESC
LIMIT %(limit)s

-- intake_idempotent_job --
-- The job a user enqueued before with this idempotency key.
SELECT id, job_type, metadata FROM processing_jobs
WHERE user_id IS NOT DISTINCT FROM %(user_id)s::uuid AND idempotency_key = %(key)s
