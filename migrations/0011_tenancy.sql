-- Multi-tenant safety: uploads owned by users, per-user idempotency keys, usage for quotas, branches
-- resolved to their story.

-- Files a user uploaded (training images). Jobs name an upload by id; the worker reads only the folder
-- the row names, under storage. user_id NULL: made by an admin key or the CLI.
CREATE TABLE uploads (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL DEFAULT 'training_images',
    folder TEXT NOT NULL,  -- relative to storage: uploads/<user or admin>/<id>
    file_count INTEGER NOT NULL,
    total_bytes BIGINT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_uploads_user ON uploads (user_id, created_at DESC);

-- An idempotency key is the caller's: two users may use the same key for different jobs, and a key
-- never reveals another user's job. Bounded so that a key cannot be used to store data.
ALTER TABLE processing_jobs DROP CONSTRAINT processing_jobs_idempotency_key_key;
CREATE UNIQUE INDEX processing_jobs_user_idempotency_key
    ON processing_jobs (user_id, idempotency_key) NULLS NOT DISTINCT WHERE idempotency_key IS NOT NULL;
ALTER TABLE processing_jobs
    ADD CONSTRAINT processing_jobs_idempotency_key_length CHECK (length(idempotency_key) <= 200) NOT VALID;

-- What each user enqueued per day, counted when it is enqueued (quotas of configs/tiers.toml). Rows
-- only grow; retries, cancels and archiving do not give quota back.
CREATE TABLE user_usage (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    kind TEXT NOT NULL,  -- images, trainings
    amount INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, kind)
);

-- Per-user exceptions to their tier's quotas and caps (admins set them): {"images_per_day": 500}.
ALTER TABLE users ADD COLUMN quota_overrides JSONB NOT NULL DEFAULT '{}';

-- Branches belong to their story too; a story id names a story only when it exists.
CREATE OR REPLACE FUNCTION entity_story_id(kind TEXT, entity UUID) RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT CASE kind
        WHEN 'story' THEN (SELECT id FROM stories WHERE id = entity)
        WHEN 'chapter' THEN (SELECT story_id FROM chapters WHERE id = entity)
        WHEN 'scene' THEN (SELECT c.story_id FROM scenes s JOIN chapters c ON c.id = s.chapter_id
                           WHERE s.id = entity)
        WHEN 'character' THEN (SELECT story_id FROM characters WHERE id = entity)
        WHEN 'location' THEN (SELECT story_id FROM locations WHERE id = entity)
        WHEN 'branch' THEN (SELECT parent_story_id FROM story_branches WHERE id = entity)
    END
$$;

-- A failed or cancelled training job marks its LoRA failed only when the LoRA is its user's (a job that
-- named someone else's LoRA is refused, and must not touch that LoRA on the way out).
CREATE OR REPLACE FUNCTION lora_follows_training_job() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lora_models
    SET status = 'failed',
        error_message = COALESCE(NEW.error_message, 'training job ' || NEW.status),
        training_job_id = NEW.id
    WHERE id = NEW.entity_id AND status = 'training'
      AND (NEW.user_id IS NULL OR user_id IS NOT DISTINCT FROM NEW.user_id);
    RETURN NULL;
END $$;
