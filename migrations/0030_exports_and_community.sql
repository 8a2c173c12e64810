-- Exports and community sharing (issue 12).
--
-- 'files' signs expiring URLs of private files (HMAC-SHA256), apart from the cursor secret.
INSERT INTO api_secrets (name, secret)
VALUES ('files', sha256(convert_to(gen_random_uuid()::TEXT || gen_random_uuid()::TEXT, 'UTF8')))
ON CONFLICT (name) DO NOTHING;

-- A story is published at most once (republishing updates the listing).
CREATE UNIQUE INDEX community_stories_story ON community_stories (story_id);
CREATE INDEX community_stories_published ON community_stories (published_at DESC, id DESC);
CREATE INDEX community_stories_popular ON community_stories (like_count DESC, view_count DESC, id);
CREATE INDEX community_stories_tags ON community_stories USING GIN (tags);
CREATE INDEX community_stories_category ON community_stories (category);

-- One like and one bookmark per user and story; comments and shares may repeat.
CREATE UNIQUE INDEX community_interactions_once ON community_interactions (story_id, user_id, interaction_type)
    WHERE interaction_type IN ('like', 'bookmark');
CREATE INDEX community_interactions_story ON community_interactions (story_id, interaction_type, created_at DESC);
CREATE INDEX community_interactions_user_recent ON community_interactions (user_id, created_at DESC)
    WHERE interaction_type = 'comment';

-- Views de-duplicated per viewer and day; the API buffers them and writes batches here, and each batch
-- adds the newly seen rows to community_stories.view_count in the same statement.
CREATE TABLE community_views (
    story_id UUID NOT NULL REFERENCES community_stories(id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,  -- a user id, or a hash of the anonymous caller's address
    day DATE NOT NULL,
    PRIMARY KEY (story_id, viewer, day)
);

-- like_count stays exact: kept by the database itself on every like added or removed.
CREATE FUNCTION community_like_count() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.interaction_type = 'like' THEN
        UPDATE community_stories SET like_count = like_count + 1 WHERE id = NEW.story_id;
    ELSIF TG_OP = 'DELETE' AND OLD.interaction_type = 'like' THEN
        UPDATE community_stories SET like_count = like_count - 1 WHERE id = OLD.story_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER community_interactions_like_count AFTER INSERT OR DELETE ON community_interactions
    FOR EACH ROW EXECUTE FUNCTION community_like_count();

CREATE INDEX lora_models_public ON lora_models (download_count DESC, created_at DESC) WHERE is_public;
CREATE INDEX generation_presets_public ON generation_presets (usage_count DESC, created_at DESC) WHERE is_public;
