-- sa_entity_story --
-- The story a chapter, scene, character, location, branch or custom field belongs to (NULL: none such).
SELECT CASE %(kind)s
    WHEN 'story' THEN (SELECT id FROM stories WHERE id = %(id)s)
    WHEN 'chapter' THEN (SELECT story_id FROM chapters WHERE id = %(id)s)
    WHEN 'scene' THEN (SELECT c.story_id FROM scenes s JOIN chapters c ON c.id = s.chapter_id WHERE s.id = %(id)s)
    WHEN 'character' THEN (SELECT story_id FROM characters WHERE id = %(id)s)
    WHEN 'location' THEN (SELECT story_id FROM locations WHERE id = %(id)s)
    WHEN 'branch' THEN (SELECT parent_story_id FROM story_branches WHERE id = %(id)s)
    WHEN 'custom_field' THEN (SELECT story_id FROM custom_fields WHERE id = %(id)s)
    WHEN 'template' THEN (SELECT story_id FROM entity_templates WHERE id = %(id)s)
END AS story_id

-- sa_chapter --
-- A chapter with its text and its latest extraction.
SELECT c.id, c.story_id, c.chapter_number, c.title, c.content, c.content_hash, c.created_at,
       (SELECT json_build_object('revision', e.revision, 'analyzer', e.analyzer, 'job_id', e.job_id,
                                 'created_at', e.created_at, 'counts', e.changes -> 'counts')
        FROM scene_extractions e WHERE e.chapter_id = c.id ORDER BY e.created_at DESC LIMIT 1) AS extraction
FROM chapters c WHERE c.id = %(id)s

-- sa_scenes --
-- Scenes (of a chapter, or one by id) with location, characters, emotions, transitions in, image count.
SELECT s.id, s.chapter_id, ch.chapter_number, s.scene_number, s.title, s.summary, s.content, s.emotional_tone,
       s.content_start, s.content_end, s.analyzer, s.revision, s.retired_at, s.created_at, s.updated_at,
       CASE WHEN l.id IS NULL THEN NULL
            ELSE json_build_object('id', l.id, 'name', l.name, 'description', l.description) END AS location,
       (SELECT count(*) FROM images i WHERE i.scene_id = s.id) AS image_count,
       COALESCE((SELECT json_agg(json_build_object(
            'id', c.id, 'name', c.name, 'aliases', c.aliases, 'appearance_description', c.appearance_description,
            'emotion', (SELECT json_build_object(
                  'id', ce.id, 'primary_emotion', ce.primary_emotion, 'emotion_intensity', ce.emotion_intensity,
                  'secondary_emotions', ce.secondary_emotions, 'emotional_triggers', ce.emotional_triggers,
                  'facial_expression_notes', ce.facial_expression_notes, 'body_language_notes', ce.body_language_notes)
                FROM character_emotions ce WHERE ce.scene_id = s.id AND ce.character_id = c.id
                ORDER BY ce.created_at DESC LIMIT 1),
            'transition_in', (SELECT json_build_object(
                  'id', et.id, 'from_scene_id', et.from_scene_id, 'transition_type', et.transition_type,
                  'transition_cause', et.transition_cause)
                FROM emotion_transitions et WHERE et.to_scene_id = s.id AND et.character_id = c.id LIMIT 1)
        ) ORDER BY c.name) FROM scene_characters sc JOIN characters c ON c.id = sc.character_id
        WHERE sc.scene_id = s.id), '[]'::json) AS characters
FROM scenes s
JOIN chapters ch ON ch.id = s.chapter_id
LEFT JOIN locations l ON l.id = s.location_id
WHERE (s.id = %(scene_id)s::uuid OR (%(scene_id)s::uuid IS NULL AND s.chapter_id = %(chapter_id)s::uuid
                                     AND (s.retired_at IS NULL OR %(retired)s)))
ORDER BY s.retired_at NULLS FIRST, s.scene_number

-- sa_characters --
-- A story's characters with aliases, how many scenes they are in, and their emotions in reading order.
SELECT c.id, c.story_id, c.name, c.aliases, c.appearance_description, c.personality, c.created_at,
       (SELECT count(*) FROM scene_characters sc JOIN scenes s ON s.id = sc.scene_id AND s.retired_at IS NULL
        WHERE sc.character_id = c.id) AS scene_count
FROM characters c WHERE c.story_id = %(story_id)s ORDER BY c.name, c.id

-- sa_character_update --
-- Change a character's name, aliases or appearance (a field passed as NULL is unchanged).
UPDATE characters SET name = COALESCE(%(name)s, name), aliases = COALESCE(%(aliases)s, aliases),
    appearance_description = CASE WHEN %(set_appearance)s THEN %(appearance)s ELSE appearance_description END,
    personality = CASE WHEN %(set_personality)s THEN %(personality)s ELSE personality END
WHERE id = %(id)s
RETURNING id, story_id, name, aliases, appearance_description, personality, created_at, 0::bigint AS scene_count

-- sa_branches --
-- A story's branches.
SELECT id, parent_story_id, branch_name, branch_point_chapter, description, created_by, is_active, created_at
FROM story_branches WHERE parent_story_id = %(story_id)s ORDER BY created_at, id

-- sa_branch_get --
-- One branch.
SELECT id, parent_story_id, branch_name, branch_point_chapter, description, created_by, is_active, created_at
FROM story_branches WHERE id = %(id)s

-- sa_branch_create --
-- A new branch of a story.
INSERT INTO story_branches (parent_story_id, branch_name, branch_point_chapter, description, created_by, is_active)
VALUES (%(story_id)s, %(branch_name)s, %(branch_point_chapter)s, %(description)s, %(created_by)s, %(is_active)s)
RETURNING id, parent_story_id, branch_name, branch_point_chapter, description, created_by, is_active, created_at

-- sa_branch_update --
-- Rename, describe, (de)activate a branch (NULL: unchanged).
UPDATE story_branches SET branch_name = COALESCE(%(branch_name)s, branch_name),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    is_active = COALESCE(%(is_active)s, is_active)
WHERE id = %(id)s
RETURNING id, parent_story_id, branch_name, branch_point_chapter, description, created_by, is_active, created_at

-- sa_branch_states --
-- A branch's character states.
SELECT b.id, b.branch_id, b.character_id, c.name AS character_name, b.chapter_number, b.appearance_description,
       b.emotional_state, b.branch_specific_changes, b.created_at
FROM branch_character_states b JOIN characters c ON c.id = b.character_id
WHERE b.branch_id = %(branch_id)s ORDER BY b.chapter_number, c.name, b.created_at

-- sa_branch_state_create --
-- A character's state in a branch from a chapter on.
WITH s AS (
    INSERT INTO branch_character_states (branch_id, character_id, chapter_number, appearance_description,
                                         emotional_state, branch_specific_changes)
    VALUES (%(branch_id)s, %(character_id)s, %(chapter_number)s, %(appearance_description)s, %(emotional_state)s,
            %(branch_specific_changes)s)
    RETURNING *
)
SELECT s.id, s.branch_id, s.character_id, c.name AS character_name, s.chapter_number, s.appearance_description,
       s.emotional_state, s.branch_specific_changes, s.created_at
FROM s JOIN characters c ON c.id = s.character_id

-- sa_story_loras --
-- A story's LoRA styles.
SELECT sls.id, sls.story_id, sls.lora_model_id, lm.name AS lora_name, lm.status AS lora_status, sls.strength,
       sls.apply_to_scenes, sls.created_at
FROM story_lora_settings sls JOIN lora_models lm ON lm.id = sls.lora_model_id
WHERE sls.story_id = %(story_id)s ORDER BY sls.created_at, sls.id

-- sa_story_lora_get --
-- One LoRA style of a story.
SELECT sls.id, sls.story_id, sls.lora_model_id, lm.name AS lora_name, lm.status AS lora_status, sls.strength,
       sls.apply_to_scenes, sls.created_at
FROM story_lora_settings sls JOIN lora_models lm ON lm.id = sls.lora_model_id
WHERE sls.id = %(id)s AND sls.story_id = %(story_id)s

-- sa_lora_usable --
-- A LoRA the user may apply (theirs, public or unowned; any for admins), with its strength range.
SELECT id, name, status, strength_range FROM lora_models
WHERE id = %(id)s AND (%(admin)s OR user_id IS NULL OR is_public OR user_id = %(user_id)s::uuid)

-- sa_story_lora_create --
-- Apply a LoRA style to a story.
INSERT INTO story_lora_settings (story_id, lora_model_id, strength, apply_to_scenes)
VALUES (%(story_id)s, %(lora_model_id)s, %(strength)s, %(apply_to_scenes)s) RETURNING id

-- sa_story_lora_update --
-- Change a style's strength or scenes (NULL: unchanged).
UPDATE story_lora_settings SET strength = COALESCE(%(strength)s, strength),
    apply_to_scenes = COALESCE(%(apply_to_scenes)s, apply_to_scenes)
WHERE id = %(id)s AND story_id = %(story_id)s RETURNING id

-- sa_story_lora_delete --
-- Remove a LoRA style from a story.
DELETE FROM story_lora_settings WHERE id = %(id)s AND story_id = %(story_id)s RETURNING id

-- sa_story_scene_ids --
-- Which of these ids are current scenes of the story.
SELECT s.id FROM scenes s JOIN chapters c ON c.id = s.chapter_id
WHERE c.story_id = %(story_id)s AND s.id = ANY(%(ids)s::uuid[])

-- sa_custom_fields --
-- A story's custom fields.
SELECT id, story_id, field_name, field_type, default_value, applies_to, metadata, created_at
FROM custom_fields WHERE story_id = %(story_id)s ORDER BY created_at, id

-- sa_custom_field_get --
-- One custom field.
SELECT id, story_id, field_name, field_type, default_value, applies_to, metadata, created_at
FROM custom_fields WHERE id = %(id)s

-- sa_custom_field_create --
-- A new custom field of a story.
INSERT INTO custom_fields (story_id, field_name, field_type, default_value, applies_to, metadata)
VALUES (%(story_id)s, %(field_name)s, %(field_type)s, %(default_value)s, %(applies_to)s, %(metadata)s)
RETURNING id, story_id, field_name, field_type, default_value, applies_to, metadata, created_at

-- sa_custom_field_update --
-- Change a field's name, default, entities or metadata (its type is fixed: its values were checked against it).
UPDATE custom_fields SET field_name = COALESCE(%(field_name)s, field_name),
    default_value = CASE WHEN %(set_default)s THEN %(default_value)s ELSE default_value END,
    applies_to = COALESCE(%(applies_to)s, applies_to), metadata = COALESCE(%(metadata)s, metadata)
WHERE id = %(id)s
RETURNING id, story_id, field_name, field_type, default_value, applies_to, metadata, created_at

-- sa_custom_field_delete --
-- Delete a custom field and its values.
DELETE FROM custom_fields WHERE id = %(id)s RETURNING id

-- sa_custom_value_set --
-- Set a field's value on an entity (one value per field and entity).
INSERT INTO custom_field_values (custom_field_id, entity_type, entity_id, field_value)
VALUES (%(field_id)s, %(entity_type)s, %(entity_id)s, %(value)s)
ON CONFLICT (custom_field_id, entity_type, entity_id) DO UPDATE SET field_value = EXCLUDED.field_value
RETURNING id, custom_field_id, entity_type, entity_id, field_value, created_at

-- sa_custom_value_delete --
-- Remove a field's value from an entity (the default applies again).
DELETE FROM custom_field_values WHERE custom_field_id = %(field_id)s AND entity_type = %(entity_type)s
  AND entity_id = %(entity_id)s RETURNING id

-- sa_custom_values_of --
-- An entity's custom field values by field name (defaults where no value is set).
SELECT f.id AS field_id, f.field_name, f.field_type, v.field_value IS NULL AS is_default,
       COALESCE(v.field_value, f.default_value) AS value
FROM custom_fields f
LEFT JOIN custom_field_values v ON v.custom_field_id = f.id AND v.entity_type = %(entity_type)s
                                AND v.entity_id = %(entity_id)s
WHERE f.story_id = %(story_id)s AND (%(entity_type)s || 's') = ANY(f.applies_to)
ORDER BY f.created_at, f.id

-- sa_templates --
-- Entity templates of a story, and the global ones.
SELECT id, story_id, entity_type, template_name, template_schema, created_at FROM entity_templates
WHERE (story_id = %(story_id)s OR story_id IS NULL)
  AND (%(entity_type)s::text IS NULL OR entity_type = %(entity_type)s)
ORDER BY story_id NULLS FIRST, created_at, id

-- sa_template_create --
-- A new entity template (story_id NULL: global).
INSERT INTO entity_templates (story_id, entity_type, template_name, template_schema)
VALUES (%(story_id)s, %(entity_type)s, %(template_name)s, %(template_schema)s)
RETURNING id, story_id, entity_type, template_name, template_schema, created_at

-- sa_template_delete --
-- Delete an entity template.
DELETE FROM entity_templates WHERE id = %(id)s RETURNING id

-- sa_metadata_of --
-- An entity's metadata as key/value rows.
SELECT metadata_key, metadata_value FROM entity_metadata
WHERE entity_type = %(entity_type)s AND entity_id = %(entity_id)s ORDER BY metadata_key

-- sa_metadata_set --
-- Set one metadata key of an entity.
INSERT INTO entity_metadata (entity_type, entity_id, metadata_key, metadata_value)
VALUES (%(entity_type)s, %(entity_id)s, %(key)s, %(value)s)
ON CONFLICT (entity_type, entity_id, metadata_key) DO UPDATE SET metadata_value = EXCLUDED.metadata_value

-- sa_metadata_delete --
-- Remove one metadata key of an entity.
DELETE FROM entity_metadata WHERE entity_type = %(entity_type)s AND entity_id = %(entity_id)s
  AND metadata_key = %(key)s RETURNING id

-- sa_locations --
-- A story's locations with how many current scenes take place there.
SELECT l.id, l.story_id, l.name, l.description,
       (SELECT count(*) FROM scenes s WHERE s.location_id = l.id AND s.retired_at IS NULL) AS scene_count
FROM locations l WHERE l.story_id = %(story_id)s ORDER BY l.name, l.id

-- sa_scene_update --
-- A person's correction of a scene (each field only when given).
UPDATE scenes SET title = CASE WHEN %(set_title)s THEN %(title)s ELSE title END,
    summary = CASE WHEN %(set_summary)s THEN %(summary)s ELSE summary END,
    emotional_tone = CASE WHEN %(set_emotional_tone)s THEN %(emotional_tone)s ELSE emotional_tone END,
    updated_at = NOW()
WHERE id = %(id)s
