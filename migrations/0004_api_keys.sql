-- The control API: keys (stored only as hashes) with a role, the server secret that signs pagination
-- cursors, and the helper that finds the story a job, image or other entity belongs to.

CREATE TABLE api_keys (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,                 -- the key's first characters, to recognise it in listings
    key_hash TEXT NOT NULL UNIQUE,        -- sha256 (hex) of the whole key; the key itself is never stored
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    last_used_at TIMESTAMP WITH TIME ZONE,
    revoked_at TIMESTAMP WITH TIME ZONE,
    CHECK (role = 'admin' OR user_id IS NOT NULL)  -- a user key acts for one user
);

-- Secrets of the API shared by every API process on this database. 'cursor' signs pagination cursors;
-- two random UUIDs (pg_strong_random) hashed give 32 bytes without needing pgcrypto.
CREATE TABLE api_secrets (
    name TEXT PRIMARY KEY,
    secret BYTEA NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
INSERT INTO api_secrets (name, secret)
VALUES ('cursor', sha256(convert_to(gen_random_uuid()::TEXT || gen_random_uuid()::TEXT, 'UTF8')));

-- The story an entity belongs to (NULL when it belongs to none): collaborator rights follow it.
CREATE FUNCTION entity_story_id(kind TEXT, entity UUID) RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT CASE kind
        WHEN 'story' THEN entity
        WHEN 'chapter' THEN (SELECT story_id FROM chapters WHERE id = entity)
        WHEN 'scene' THEN (SELECT c.story_id FROM scenes s JOIN chapters c ON c.id = s.chapter_id
                           WHERE s.id = entity)
        WHEN 'character' THEN (SELECT story_id FROM characters WHERE id = entity)
        WHEN 'location' THEN (SELECT story_id FROM locations WHERE id = entity)
    END
$$;

CREATE INDEX idx_processing_jobs_user ON processing_jobs (user_id, created_at DESC);
CREATE INDEX idx_processing_jobs_finished ON processing_jobs (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX idx_story_collaborators_user ON story_collaborators (user_id, story_id);
