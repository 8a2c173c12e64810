-- book_story_by_source --
-- The user's story made from a file with these bytes before (ingest is idempotent by content hash).
SELECT id, title FROM stories
WHERE user_id IS NOT DISTINCT FROM %(user_id)s::uuid AND source_hash = %(source_hash)s
LIMIT 1

-- book_story_create --
-- A story made by ingest.
INSERT INTO stories (user_id, title, description, genre, source_hash, source)
VALUES (%(user_id)s, %(title)s, %(description)s, %(genre)s, %(source_hash)s, %(source)s)
RETURNING id, user_id, title

-- book_story_lock --
-- The story, locked while chapters are added (chapter numbers are chosen under the lock).
SELECT id, user_id, title FROM stories WHERE id = %(id)s FOR UPDATE

-- book_chapters --
-- A story's chapters, in order, without their text.
SELECT id, story_id, chapter_number, title, content_hash, length(content) AS characters,
       (SELECT count(*) FROM scenes s WHERE s.chapter_id = c.id AND s.retired_at IS NULL) AS scenes,
       created_at
FROM chapters c WHERE story_id = %(story_id)s ORDER BY chapter_number

-- book_chapter_upsert --
-- A chapter by number: inserted, or its text replaced when it changed. `status` says which.
WITH old AS (
    SELECT id, content_hash FROM chapters WHERE story_id = %(story_id)s AND chapter_number = %(number)s
), inserted AS (
    INSERT INTO chapters (story_id, chapter_number, title, content, content_hash)
    SELECT %(story_id)s, %(number)s, %(title)s, %(content)s, %(content_hash)s
    WHERE NOT EXISTS (SELECT 1 FROM old)
    RETURNING id
), updated AS (
    UPDATE chapters SET content = %(content)s, content_hash = %(content_hash)s, title = %(title)s
    WHERE id = (SELECT id FROM old) AND content_hash IS DISTINCT FROM %(content_hash)s
    RETURNING id
)
SELECT id, 'added' AS status FROM inserted
UNION ALL SELECT id, 'changed' FROM updated
UNION ALL SELECT id, 'unchanged' FROM old WHERE NOT EXISTS (SELECT 1 FROM updated)

-- book_chapter_by_hash --
-- A chapter of the story with exactly this text.
SELECT id, chapter_number FROM chapters WHERE story_id = %(story_id)s AND content_hash = %(content_hash)s
ORDER BY chapter_number LIMIT 1

-- book_next_chapter_number --
-- The number a chapter added at the end gets.
SELECT COALESCE(max(chapter_number), 0) + 1 AS number FROM chapters WHERE story_id = %(story_id)s

-- book_chapter_get --
-- A chapter with its text and story.
SELECT c.id, c.story_id, c.chapter_number, c.title, c.content, c.content_hash, c.created_at,
       s.user_id AS owner_id
FROM chapters c JOIN stories s ON s.id = c.story_id WHERE c.id = %(id)s

-- book_chapter_lock --
-- The chapter being extracted, locked so that two extractions of one chapter run one after the other.
SELECT c.id, c.story_id, c.chapter_number, c.content, c.content_hash FROM chapters c WHERE c.id = %(id)s
FOR UPDATE

-- extraction_story_characters --
-- The story's characters with their aliases (the analyzer merges new names into them).
SELECT id, name, aliases, appearance_description FROM characters WHERE story_id = %(story_id)s
ORDER BY created_at, id

-- extraction_character_insert --
-- A character found by extraction.
INSERT INTO characters (story_id, name, aliases, appearance_description)
VALUES (%(story_id)s, %(name)s, %(aliases)s, %(appearance)s) RETURNING id

-- extraction_character_merge --
-- More aliases for a known character, and its appearance when it had none.
UPDATE characters
SET aliases = ARRAY(SELECT DISTINCT a FROM unnest(aliases || %(aliases)s::text[]) AS a WHERE a <> name ORDER BY a),
    appearance_description = COALESCE(appearance_description, %(appearance)s)
WHERE id = %(id)s

-- extraction_story_locations --
-- The story's locations.
SELECT id, name FROM locations WHERE story_id = %(story_id)s

-- extraction_location_insert --
-- A location found by extraction.
INSERT INTO locations (story_id, name, description) VALUES (%(story_id)s, %(name)s, %(description)s) RETURNING id

-- extraction_chapter_scenes --
-- The chapter's current scenes, each with whether it has images or edits (those are never deleted).
SELECT s.id, s.scene_number, s.content_hash, s.analysis_hash, s.revision,
       EXISTS (SELECT 1 FROM images i WHERE i.scene_id = s.id) AS has_images,
       EXISTS (SELECT 1 FROM edit_history e WHERE e.entity_type = 'scene' AND e.entity_id = s.id) AS has_edits
FROM scenes s WHERE s.chapter_id = %(chapter_id)s AND s.retired_at IS NULL
ORDER BY s.scene_number, s.created_at

-- extraction_scene_insert --
-- A scene found by extraction.
INSERT INTO scenes (chapter_id, scene_number, title, content, summary, emotional_tone, location_id,
                    content_start, content_end, content_hash, analyzer, analysis_hash, revision)
VALUES (%(chapter_id)s, %(number)s, %(title)s, %(content)s, %(summary)s, %(tone)s, %(location_id)s,
        %(start)s, %(end)s, %(content_hash)s, %(analyzer)s, %(analysis_hash)s, %(revision)s)
RETURNING id

-- extraction_scene_update --
-- A kept scene: its place in the chapter, and what the analyzer says of it when that changed.
UPDATE scenes
SET scene_number = %(number)s, content_start = %(start)s, content_end = %(end)s,
    title = CASE WHEN %(rewrite)s THEN %(title)s ELSE title END,
    summary = CASE WHEN %(rewrite)s THEN %(summary)s ELSE summary END,
    emotional_tone = CASE WHEN %(rewrite)s THEN %(tone)s ELSE emotional_tone END,
    location_id = CASE WHEN %(rewrite)s THEN %(location_id)s::uuid ELSE location_id END,
    analyzer = CASE WHEN %(rewrite)s THEN %(analyzer)s ELSE analyzer END,
    analysis_hash = CASE WHEN %(rewrite)s THEN %(analysis_hash)s ELSE analysis_hash END,
    revision = CASE WHEN %(rewrite)s THEN %(revision)s ELSE revision END,
    updated_at = CASE WHEN %(rewrite)s THEN NOW() ELSE updated_at END
WHERE id = %(id)s

-- extraction_scene_clear --
-- Forget what an earlier analysis said of a scene (its characters and emotions) before writing anew.
WITH gone AS (DELETE FROM character_emotions WHERE scene_id = %(id)s)
DELETE FROM scene_characters WHERE scene_id = %(id)s

-- extraction_scene_character --
-- A character present in a scene.
INSERT INTO scene_characters (scene_id, character_id) VALUES (%(scene_id)s, %(character_id)s) ON CONFLICT DO NOTHING

-- extraction_emotion_insert --
-- A character's emotion in a scene.
INSERT INTO character_emotions (character_id, scene_id, primary_emotion, emotion_intensity, secondary_emotions,
                                emotional_triggers, facial_expression_notes, body_language_notes)
VALUES (%(character_id)s, %(scene_id)s, %(primary)s, %(intensity)s, %(secondary)s, %(triggers)s, %(face)s, %(body)s)

-- extraction_scene_retire --
-- A scene the new extraction no longer finds but that has images or edits: kept, out of the chapter's scenes.
UPDATE scenes SET retired_at = NOW(), updated_at = NOW() WHERE id = %(id)s

-- extraction_scene_delete --
-- A scene the new extraction no longer finds, with nothing of the user's attached.
DELETE FROM scenes WHERE id = %(id)s

-- extraction_last_revision --
-- The chapter's latest extraction revision (0 before the first).
SELECT COALESCE(max(revision), 0) AS revision FROM scene_extractions WHERE chapter_id = %(chapter_id)s

-- extraction_record --
-- One extraction run and what it changed.
INSERT INTO scene_extractions (chapter_id, job_id, analyzer, revision, content_hash, changes)
VALUES (%(chapter_id)s, %(job_id)s, %(analyzer)s, %(revision)s, %(content_hash)s, %(changes)s)
RETURNING id

-- extraction_story_emotions --
-- Every emotion of the story's characters in its current scenes, in reading order (for transitions).
SELECT ce.character_id, ce.scene_id, ce.primary_emotion, ce.emotion_intensity, ce.emotional_triggers
FROM character_emotions ce
JOIN scenes s ON s.id = ce.scene_id AND s.retired_at IS NULL
JOIN chapters ch ON ch.id = s.chapter_id
WHERE ch.story_id = %(story_id)s
ORDER BY ce.character_id, ch.chapter_number, s.scene_number, ce.created_at

-- extraction_transitions_clear --
-- The story's emotion transitions, recomputed after every extraction.
DELETE FROM emotion_transitions et USING characters c
WHERE c.id = et.character_id AND c.story_id = %(story_id)s

-- extraction_transition_insert --
-- One emotion transition between a character's consecutive scenes.
INSERT INTO emotion_transitions (character_id, from_scene_id, to_scene_id, transition_type, transition_cause)
VALUES (%(character_id)s, %(from_scene_id)s, %(to_scene_id)s, %(type)s, %(cause)s)

-- extraction_new_scene_owner --
-- The story's owner (illustration jobs run for them).
SELECT user_id FROM stories WHERE id = %(story_id)s

-- scenes_of_story --
-- A story's current scenes in reading order, each with its location and characters (with their emotion).
SELECT s.id, ch.chapter_number, s.scene_number, s.title, s.summary, s.emotional_tone, l.name AS location,
       (SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'emotion', ce.primary_emotion,
                                          'intensity', ce.emotion_intensity) ORDER BY c.name)
        FROM scene_characters sc JOIN characters c ON c.id = sc.character_id
        LEFT JOIN character_emotions ce ON ce.scene_id = sc.scene_id AND ce.character_id = c.id
        WHERE sc.scene_id = s.id) AS characters
FROM scenes s
JOIN chapters ch ON ch.id = s.chapter_id
LEFT JOIN locations l ON l.id = s.location_id
WHERE ch.story_id = %(story_id)s AND s.retired_at IS NULL
ORDER BY ch.chapter_number, s.scene_number

-- extraction_custom_fields --
-- The story's custom fields an analyzer may fill.
SELECT field_name, field_type, applies_to FROM custom_fields WHERE story_id = %(story_id)s ORDER BY created_at, id

-- extraction_custom_value_fill --
-- A scene's or character's value of a custom field (by name) found by the analyzer; nothing when the
-- entity has one already.
INSERT INTO custom_field_values (custom_field_id, entity_type, entity_id, field_value)
SELECT f.id, %(entity_type)s, %(entity_id)s, %(value)s FROM custom_fields f
WHERE f.story_id = %(story_id)s AND f.field_name = %(name)s AND (%(entity_type)s || 's') = ANY(f.applies_to)
ON CONFLICT (custom_field_id, entity_type, entity_id) DO NOTHING
RETURNING id
