-- generation_scene --
-- A scene with what its prompt needs: its chapter's number, its story's id, its location. (The story's
-- metadata comes from the story metadata cache: get_story_metadata.)
SELECT s.id, s.title, s.content, s.summary, s.emotional_tone, s.chapter_id,
       ch.chapter_number, ch.story_id,
       l.id AS location_id, l.name AS location_name, l.description AS location_description
FROM scenes s
JOIN chapters ch ON ch.id = s.chapter_id
LEFT JOIN locations l ON l.id = s.location_id
WHERE s.id = %(scene_id)s

-- generation_scene_characters --
-- The characters present in a scene, by name, each with its look in the job's branch and its emotion here.
SELECT c.id, c.name, c.appearance_description,
       b.id AS state_id, b.branch_id AS state_branch_id, b.chapter_number AS state_chapter_number,
       b.appearance_description AS state_appearance, b.emotional_state AS state_emotional_state,
       e.id AS emotion_id, e.primary_emotion, e.emotion_intensity, e.secondary_emotions,
       e.facial_expression_notes, e.body_language_notes,
       t.id AS transition_id, t.transition_type, t.transition_cause, t.from_emotion
FROM scene_characters sc
JOIN characters c ON c.id = sc.character_id
-- 1. The branch overrides the look: the latest state at or before the scene's chapter (none without
--    a branch: NULL matches no row).
LEFT JOIN LATERAL (
    SELECT * FROM branch_character_states bcs
    WHERE bcs.branch_id = %(branch_id)s::uuid
      AND bcs.character_id = c.id
      AND bcs.chapter_number <= %(chapter_number)s
    ORDER BY bcs.chapter_number DESC, bcs.created_at DESC, bcs.id
    LIMIT 1
) b ON TRUE
-- 2. The character's emotion in this scene (the latest row when there are several).
LEFT JOIN LATERAL (
    SELECT * FROM character_emotions ce
    WHERE ce.character_id = c.id AND ce.scene_id = sc.scene_id
    ORDER BY ce.created_at DESC, ce.id
    LIMIT 1
) e ON TRUE
-- 3. How the character's emotion changed coming into this scene (from extraction), with the earlier emotion.
LEFT JOIN LATERAL (
    SELECT et.id, et.transition_type, et.transition_cause,
           (SELECT primary_emotion FROM character_emotions pe
            WHERE pe.character_id = c.id AND pe.scene_id = et.from_scene_id LIMIT 1) AS from_emotion
    FROM emotion_transitions et
    WHERE et.character_id = c.id AND et.to_scene_id = sc.scene_id
    ORDER BY et.created_at DESC, et.id
    LIMIT 1
) t ON TRUE
WHERE sc.scene_id = %(scene_id)s
ORDER BY c.name, c.id

-- generation_story_loras --
-- A story's LoRA styles with their LoRA rows (any status: the caller skips unready ones with a warning).
SELECT sls.id, sls.strength, sls.apply_to_scenes,
       lm.id AS lora_id, lm.name, lm.model_file_url, lm.trigger_words, lm.strength_range, lm.status
FROM story_lora_settings sls
JOIN lora_models lm ON lm.id = sls.lora_model_id
WHERE sls.story_id = %(story_id)s
ORDER BY sls.created_at, sls.id

-- generation_lora --
-- A LoRA by id, or by name or file stem (the `<lora:NAME:W>` a PNG names), among those the job's user
-- may use (theirs or public; a job with no user: any), as intake checked them: theirs first, an exact
-- name before a stem, ready first, newest first.
SELECT id, name, model_file_url, trigger_words, strength_range, status
FROM lora_models
WHERE (id = %(id)s::uuid OR (%(id)s::uuid IS NULL AND (name = %(name)s
       OR substring(model_file_url FROM '([^/]+)\.safetensors$') = %(name)s)))
  AND (is_public OR %(user_id)s::uuid IS NULL OR user_id = %(user_id)s::uuid)
ORDER BY (user_id IS NOT DISTINCT FROM %(user_id)s::uuid) DESC, (name = %(name)s) DESC, (status = 'ready') DESC,
         created_at DESC
LIMIT 1

-- generation_preset --
-- A preset by id or name among those the job's user may use (theirs or public; a job with no user: any),
-- as intake checked them: theirs first, newest first.
SELECT id, name, provider, model_name, parameters, style_modifiers
FROM generation_presets
WHERE (id = %(id)s::uuid OR (%(id)s::uuid IS NULL AND name = %(name)s))
  AND (is_public OR %(user_id)s::uuid IS NULL OR user_id = %(user_id)s::uuid)
ORDER BY (user_id IS NOT DISTINCT FROM %(user_id)s::uuid) DESC, created_at DESC
LIMIT 1

-- generation_preset_used --
-- Count one more use of a preset.
UPDATE generation_presets SET usage_count = usage_count + 1 WHERE id = %(id)s

-- generation_branch --
-- A story branch (the job's branch must belong to the scene's story).
SELECT id, parent_story_id, branch_name, branch_point_chapter, is_active FROM story_branches WHERE id = %(id)s

-- generation_user --
-- A user's tier, for provider selection (their preferences come from the user preferences cache).
SELECT id, subscription_tier FROM users WHERE id = %(id)s

-- defer_commit_flush --
-- For the rest of this transaction (the rows of a job's images): its commit does not wait for the WAL
-- flush. The job's completion, committed after it with a flush, flushes the WAL up to itself, so
-- a completed job's rows are as durable as before; a server crash before the completion loses at most
-- rows of a job that is then run again (insert_generated_image finds its file's row or writes it anew).
-- Saves one disk flush per job on an image request's path (0.1 ms on a quiet local disk, several ms on a
-- busy or networked one).
SET LOCAL synchronous_commit = off

-- insert_generated_image --
-- One generated image with its quality analysis. A retried job that stores the same file again gets
-- the existing row back.
WITH existing AS (
    -- created_at bounds the search to the partitions written since the job was enqueued
    SELECT id FROM images
    WHERE job_id = %(job_id)s AND content_hash = %(content_hash)s AND created_at >= %(job_created_at)s
    LIMIT 1
), inserted AS (
    INSERT INTO images (scene_id, user_id, job_id, provider, model_name, prompt, negative_prompt, seed,
                        parameters, file_path, content_hash, width, height, timings, quality, quality_score)
    SELECT %(scene_id)s, %(user_id)s, %(job_id)s, %(provider)s, %(model_name)s, %(prompt)s,
           %(negative_prompt)s, %(seed)s, %(parameters)s, %(file_path)s, %(content_hash)s, %(width)s,
           %(height)s, %(timings)s, %(quality)s, %(quality_score)s
    WHERE NOT EXISTS (SELECT 1 FROM existing)
    RETURNING id
)
SELECT id FROM inserted UNION ALL SELECT id FROM existing

-- insert_sample_story --
-- The sample story of the demo: two scenes in chapter 1, two characters with emotions, a location, a LoRA style.
WITH owner AS (
    INSERT INTO users (email, display_name) VALUES (NULL, 'Sample author') RETURNING id
), story AS (
    INSERT INTO stories (user_id, title, genre, style_preference)
    SELECT id, 'The Lighthouse Keeper', 'fantasy', 'artistic' FROM owner RETURNING id, user_id
), chapter AS (
    INSERT INTO chapters (story_id, chapter_number, title) SELECT id, 1, 'The storm' FROM story RETURNING id, story_id
), place AS (
    INSERT INTO locations (story_id, name, description)
    SELECT id, 'the lighthouse', 'a stone tower on a black cliff above the sea' FROM story RETURNING id
), scene AS (
    INSERT INTO scenes (chapter_id, scene_number, title, summary, emotional_tone, location_id)
    SELECT chapter.id, s.n, s.title, s.summary, s.tone, place.id
    FROM chapter, place,
         (VALUES (1, 'The lamp fails', 'Mara climbs the lighthouse stairs as the great lamp flickers out', 'tense'),
                 (2, 'The rescue', 'Mara and Tobin pull a sailor from the waves at dawn', 'hopeful')) AS s(n, title, summary, tone)
    RETURNING id, scene_number
), person AS (
    INSERT INTO characters (story_id, name, appearance_description)
    SELECT story.id, p.name, p.look FROM story,
           (VALUES ('Mara', 'old woman with a grey braid and an oilskin coat'),
                   ('Tobin', 'red-haired boy with a lantern')) AS p(name, look)
    RETURNING id, name
), present AS (
    INSERT INTO scene_characters (scene_id, character_id)
    SELECT scene.id, person.id FROM scene, person WHERE scene.scene_number = 2 OR person.name = 'Mara'
    RETURNING scene_id
), feeling AS (
    INSERT INTO character_emotions (character_id, scene_id, primary_emotion, emotion_intensity,
                                    secondary_emotions, facial_expression_notes)
    SELECT person.id, scene.id, e.emotion, e.intensity, e.secondary::jsonb, e.face
    FROM scene, person,
         (VALUES (1, 'Mara', 'determined', 0.9, '{"fear": 0.4}', 'jaw set against the wind'),
                 (2, 'Mara', 'relieved', 0.6, '{"exhaustion": 0.5}', NULL),
                 (2, 'Tobin', 'joyful', 0.2, NULL, NULL)) AS e(n, who, emotion, intensity, secondary, face)
    WHERE scene.scene_number = e.n AND person.name = e.who
    RETURNING id
), style AS (
    INSERT INTO lora_models (user_id, name, model_file_url, trigger_words, status, is_public)
    SELECT user_id, 'inkwash', %(lora_file)s, ARRAY['inkwash style'], 'ready', TRUE
    FROM story WHERE %(lora_file)s::text IS NOT NULL
    RETURNING id
), story_style AS (
    INSERT INTO story_lora_settings (story_id, lora_model_id, strength)
    SELECT story.id, style.id, 0.8 FROM story, style RETURNING id
)
SELECT story.id AS story_id, story.user_id,
       (SELECT array_agg(id ORDER BY scene_number) FROM scene) AS scene_ids,
       (SELECT count(*) FROM present) + (SELECT count(*) FROM feeling) + (SELECT count(*) FROM story_style) AS links
FROM story

-- generation_prompt_details --
-- Custom field values marked `prompt: true` of the given entities (a field's default where no value is set).
SELECT f.id AS field_id, f.field_name, e.entity_type, e.entity_id,
       COALESCE(v.field_value, f.default_value) AS value
FROM custom_fields f
JOIN chapters ch ON ch.story_id = f.story_id
JOIN unnest(%(entity_types)s::text[], %(entity_ids)s::uuid[]) AS e(entity_type, entity_id) ON TRUE
LEFT JOIN custom_field_values v
       ON v.custom_field_id = f.id AND v.entity_type = e.entity_type AND v.entity_id = e.entity_id
WHERE ch.id = %(chapter_id)s
  AND (f.metadata ->> 'prompt') = 'true'
  AND (e.entity_type || 's') = ANY(f.applies_to)
  AND COALESCE(v.field_value, f.default_value) IS NOT NULL
  AND COALESCE(v.field_value, f.default_value) <> 'null'::jsonb
ORDER BY f.created_at, f.id
