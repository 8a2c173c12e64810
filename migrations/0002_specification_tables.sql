-- Every table of the specification (seed/novel-enchant-extensibility.md), with gen_random_uuid()
-- in place of uuid_generate_v4() so no extension is needed.

CREATE TABLE entity_templates (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    entity_type TEXT NOT NULL,
    template_name TEXT NOT NULL,
    template_schema JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE entity_metadata (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id UUID NOT NULL,
    metadata_key TEXT NOT NULL,
    metadata_value JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX idx_entity_metadata_entity ON entity_metadata (entity_type, entity_id);

CREATE TABLE custom_fields (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    field_name TEXT NOT NULL,
    field_type TEXT CHECK (field_type IN ('text', 'number', 'boolean', 'json', 'array')),
    default_value JSONB,
    applies_to TEXT[] NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE custom_field_values (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    custom_field_id UUID REFERENCES custom_fields(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id UUID NOT NULL,
    field_value JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE lora_models (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    model_file_url TEXT NOT NULL,
    trigger_words TEXT[],
    strength_range JSONB DEFAULT '{"min": 0.5, "max": 1.0}',
    training_images_count INTEGER,
    status TEXT DEFAULT 'training' CHECK (status IN ('training', 'ready', 'failed')),
    is_public BOOLEAN DEFAULT FALSE,
    download_count INTEGER DEFAULT 0,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE story_lora_settings (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    lora_model_id UUID REFERENCES lora_models(id) ON DELETE CASCADE,
    strength DECIMAL(3,2) DEFAULT 0.8,
    apply_to_scenes TEXT[] DEFAULT ARRAY['all'],
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE character_emotions (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    character_id UUID REFERENCES characters(id) ON DELETE CASCADE,
    scene_id UUID REFERENCES scenes(id) ON DELETE CASCADE,
    primary_emotion TEXT NOT NULL,
    emotion_intensity DECIMAL(3,2) CHECK (emotion_intensity BETWEEN 0.0 AND 1.0),
    secondary_emotions JSONB,
    emotional_triggers TEXT[],
    facial_expression_notes TEXT,
    body_language_notes TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE emotion_transitions (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    character_id UUID REFERENCES characters(id) ON DELETE CASCADE,
    from_scene_id UUID REFERENCES scenes(id) ON DELETE CASCADE,
    to_scene_id UUID REFERENCES scenes(id) ON DELETE CASCADE,
    transition_type TEXT CHECK (transition_type IN ('gradual', 'sudden', 'triggered')),
    transition_cause TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE story_branches (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    parent_story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    branch_name TEXT NOT NULL,
    branch_point_chapter INTEGER NOT NULL,
    description TEXT,
    created_by UUID REFERENCES users(id) ON DELETE CASCADE,
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE branch_character_states (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    branch_id UUID REFERENCES story_branches(id) ON DELETE CASCADE,
    character_id UUID REFERENCES characters(id) ON DELETE CASCADE,
    chapter_number INTEGER NOT NULL,
    appearance_description TEXT NOT NULL,
    emotional_state TEXT,
    branch_specific_changes TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE story_collaborators (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    role TEXT DEFAULT 'contributor' CHECK (role IN ('owner', 'editor', 'contributor', 'viewer')),
    permissions JSONB DEFAULT '{"read": true, "write": false, "admin": false}',
    invited_by UUID REFERENCES users(id),
    invited_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    accepted_at TIMESTAMP WITH TIME ZONE,
    status TEXT DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined'))
);

CREATE TABLE edit_history (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id UUID NOT NULL,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    action_type TEXT CHECK (action_type IN ('create', 'update', 'delete')),
    changes JSONB NOT NULL,
    comment TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE generation_presets (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    provider TEXT NOT NULL,
    model_name TEXT NOT NULL,
    parameters JSONB NOT NULL,
    style_modifiers TEXT[],
    is_public BOOLEAN DEFAULT FALSE,
    usage_count INTEGER DEFAULT 0,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE user_analytics_events (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    event_data JSONB,
    session_id TEXT,
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE story_metrics (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    metric_type TEXT NOT NULL,
    metric_value DECIMAL,
    metadata JSONB,
    recorded_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE community_stories (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    story_id UUID REFERENCES stories(id) ON DELETE CASCADE,
    published_by UUID REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT,
    tags TEXT[],
    category TEXT,
    is_featured BOOLEAN DEFAULT FALSE,
    view_count INTEGER DEFAULT 0,
    like_count INTEGER DEFAULT 0,
    published_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE community_interactions (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    story_id UUID REFERENCES community_stories(id) ON DELETE CASCADE,
    interaction_type TEXT CHECK (interaction_type IN ('like', 'bookmark', 'share', 'comment')),
    content TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE data_migrations (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    migration_name TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    status TEXT DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    progress_percent INTEGER DEFAULT 0,
    error_message TEXT,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- The specification's statistics view. The unique index lets it be refreshed CONCURRENTLY.
CREATE MATERIALIZED VIEW story_statistics AS
SELECT
    s.id,
    s.title,
    COUNT(DISTINCT c.id) AS chapter_count,
    COUNT(DISTINCT sc.id) AS scene_count,
    COUNT(DISTINCT i.id) AS image_count,
    AVG(i.user_rating) AS avg_rating
FROM stories s
LEFT JOIN chapters c ON s.id = c.story_id
LEFT JOIN scenes sc ON c.id = sc.chapter_id
LEFT JOIN images i ON sc.id = i.scene_id
GROUP BY s.id, s.title;
CREATE UNIQUE INDEX idx_story_statistics_id ON story_statistics (id);
