-- Core tables the specification refers to: users, stories and their content, images, the job queue,
-- workers. gen_random_uuid() is built in since PostgreSQL 13.

CREATE TABLE users (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    email TEXT UNIQUE,
    display_name TEXT,
    subscription_tier TEXT NOT NULL DEFAULT 'free' CHECK (subscription_tier IN ('free', 'pro', 'enterprise')),
    preferences JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE stories (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT,
    genre TEXT,
    style_preference TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE chapters (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    chapter_number INTEGER NOT NULL,
    title TEXT,
    content TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE (story_id, chapter_number)
);

CREATE TABLE locations (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE characters (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    appearance_description TEXT,
    personality TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE scenes (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    chapter_id UUID NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,
    scene_number INTEGER NOT NULL DEFAULT 1,
    title TEXT,
    content TEXT,
    summary TEXT,
    emotional_tone TEXT,
    location_id UUID REFERENCES locations(id) ON DELETE SET NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_scenes_chapter ON scenes (chapter_id);

-- Which characters appear in a scene.
CREATE TABLE scene_characters (
    scene_id UUID NOT NULL REFERENCES scenes(id) ON DELETE CASCADE,
    character_id UUID NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
    PRIMARY KEY (scene_id, character_id)
);

-- Generated images, partitioned by month on created_at (partitions images_yYYYYmMM). The primary key
-- must contain the partition key. A default partition catches rows no monthly partition covers yet.
CREATE TABLE images (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    scene_id UUID REFERENCES scenes(id) ON DELETE SET NULL,
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    job_id UUID,
    provider TEXT NOT NULL DEFAULT 'local',
    model_name TEXT,
    prompt TEXT,
    negative_prompt TEXT,
    seed BIGINT,
    parameters JSONB NOT NULL DEFAULT '{}',
    file_path TEXT NOT NULL,
    content_hash TEXT,
    width INTEGER,
    height INTEGER,
    timings JSONB NOT NULL DEFAULT '{}',
    user_rating DECIMAL(3,2),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE images_default PARTITION OF images DEFAULT;
CREATE INDEX idx_images_scene ON images (scene_id);
CREATE INDEX idx_images_created ON images (created_at DESC);

-- Creates the monthly partition that holds `day` if it is missing; returns its name.
CREATE FUNCTION ensure_images_partition(day DATE) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    start_day DATE := date_trunc('month', day)::DATE;
    name TEXT := format('images_y%sm%s', to_char(start_day, 'YYYY'), to_char(start_day, 'MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF images FOR VALUES FROM (%L) TO (%L)',
                       name, start_day, (start_day + INTERVAL '1 month')::DATE);
    END IF;
    RETURN name;
END $$;
SELECT ensure_images_partition(CURRENT_DATE);
SELECT ensure_images_partition((CURRENT_DATE + INTERVAL '1 month')::DATE);

-- The job queue. Names matter: the web app inserts rows directly with plain SQL.
CREATE TABLE processing_jobs (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    job_type TEXT NOT NULL,
    entity_type TEXT,
    entity_id UUID,
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority SMALLINT NOT NULL DEFAULT 5 CHECK (priority >= 0),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    errors INTEGER NOT NULL DEFAULT 0,   -- handler exceptions
    crashes INTEGER NOT NULL DEFAULT 0,  -- leases that expired (worker died or hung)
    run_after TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    leased_by TEXT,
    lease_expires_at TIMESTAMP WITH TIME ZONE,
    lease_token UUID,
    heartbeat_at TIMESTAMP WITH TIME ZONE,
    progress_percent SMALLINT NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
    progress JSONB,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    result JSONB,
    error_message TEXT,
    idempotency_key TEXT UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE
);

-- The specification's queue index, exactly.
CREATE INDEX idx_processing_jobs_queue ON processing_jobs (status, priority, created_at)
    WHERE status IN ('pending', 'processing');
-- The reaper looks for expired leases.
CREATE INDEX idx_processing_jobs_leases ON processing_jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX idx_processing_jobs_entity ON processing_jobs (entity_type, entity_id);

-- Wake idle workers at once when runnable work appears: on insert, and when a job goes back to pending
-- (hand-back, retry of a failed job). The payload is the job type so workers can ignore others' work.
-- Postgres folds identical notifications within one transaction, so a batch insert sends one per type.
CREATE FUNCTION processing_jobs_notify() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND NEW.run_after <= NOW() THEN
        PERFORM pg_notify('enchant_jobs', NEW.job_type);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_notify_insert AFTER INSERT ON processing_jobs
    FOR EACH ROW EXECUTE FUNCTION processing_jobs_notify();
CREATE TRIGGER processing_jobs_notify_requeue AFTER UPDATE OF status ON processing_jobs
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION processing_jobs_notify();

-- Cancellation of a running job reaches its worker at once through this channel.
CREATE FUNCTION processing_jobs_notify_cancel() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('enchant_cancel', NEW.id::TEXT);
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_cancel AFTER UPDATE OF cancel_requested ON processing_jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested)
    EXECUTE FUNCTION processing_jobs_notify_cancel();

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    job_types TEXT[] NOT NULL,
    device JSONB NOT NULL DEFAULT '{}',
    concurrency INTEGER NOT NULL DEFAULT 1,
    current_job_ids UUID[] NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopping', 'stopped')),
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    heartbeat_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    jobs_completed BIGINT NOT NULL DEFAULT 0,
    jobs_failed BIGINT NOT NULL DEFAULT 0
);
