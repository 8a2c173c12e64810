-- From chapter text to scenes: where a story and its chapters came from (ingest is idempotent by content
-- hash), where each scene lies in its chapter and which extraction made it, characters' aliases, a record
-- of every extraction run (revision and what changed), custom fields' own metadata (`prompt: true`), and
-- story-scoped entity templates.

-- 1. Ingest: the same file twice is one story; a chapter changed by a re-ingest is seen by its hash.
ALTER TABLE stories ADD COLUMN source_hash TEXT;
ALTER TABLE stories ADD COLUMN source JSONB;
CREATE UNIQUE INDEX idx_stories_source ON stories (user_id, source_hash) WHERE source_hash IS NOT NULL;
ALTER TABLE chapters ADD COLUMN content_hash TEXT;

-- 2. Scenes made by extraction: their span of the chapter text, the analyzer and revision that made them,
--    a fingerprint of what the analyzer said (re-extraction rewrites a scene only when it changes), and
--    retirement: a scene with images or edits that a new extraction no longer finds is kept, retired.
ALTER TABLE scenes ADD COLUMN content_start INTEGER;
ALTER TABLE scenes ADD COLUMN content_end INTEGER;
ALTER TABLE scenes ADD COLUMN content_hash TEXT;
ALTER TABLE scenes ADD COLUMN analyzer TEXT;
ALTER TABLE scenes ADD COLUMN analysis_hash TEXT;
ALTER TABLE scenes ADD COLUMN revision INTEGER;
ALTER TABLE scenes ADD COLUMN retired_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE scenes ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX idx_scenes_chapter_active ON scenes (chapter_id, scene_number) WHERE retired_at IS NULL;

-- 3. One character per person across the story: the names it also goes by.
ALTER TABLE characters ADD COLUMN aliases TEXT[] NOT NULL DEFAULT '{}';
CREATE INDEX idx_characters_story ON characters (story_id);
CREATE INDEX idx_locations_story ON locations (story_id);
CREATE INDEX idx_character_emotions_scene ON character_emotions (scene_id, character_id);
CREATE INDEX idx_emotion_transitions_character ON emotion_transitions (character_id);
CREATE INDEX idx_emotion_transitions_to ON emotion_transitions (to_scene_id);

-- 4. Every extraction of a chapter: its revision (bumped only when something changed) and what changed.
CREATE TABLE scene_extractions (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    chapter_id UUID NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,
    job_id UUID,
    analyzer TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT,
    changes JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_scene_extractions_chapter ON scene_extractions (chapter_id, created_at DESC);

-- 5. Custom fields: the field's own settings ({"prompt": true} adds its values to image prompts), one
--    value per field and entity, and one field name per story.
ALTER TABLE custom_fields ADD COLUMN metadata JSONB NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX idx_custom_fields_story_name ON custom_fields (story_id, lower(field_name));
CREATE UNIQUE INDEX idx_custom_field_values_entity ON custom_field_values (custom_field_id, entity_type, entity_id);
CREATE INDEX idx_custom_field_values_lookup ON custom_field_values (entity_type, entity_id);

-- 6. Entity templates may belong to a story (NULL: global, admins only); one value per entity and key.
ALTER TABLE entity_templates ADD COLUMN story_id UUID REFERENCES stories(id) ON DELETE CASCADE;
CREATE INDEX idx_entity_templates_type ON entity_templates (entity_type, story_id);
CREATE UNIQUE INDEX idx_entity_metadata_key ON entity_metadata (entity_type, entity_id, metadata_key);
