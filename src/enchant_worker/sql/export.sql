-- export_story_row --
-- The story with its owner's name and email (the JSON export's author).
SELECT s.id, s.user_id, s.title, s.description, s.genre, s.style_preference, s.created_at, s.updated_at,
       u.email AS owner_email, u.display_name AS owner_name
FROM stories s LEFT JOIN users u ON u.id = s.user_id
WHERE s.id = %(story_id)s

-- export_chapters --
-- Chapters in reading order.
SELECT id, chapter_number, title, content, created_at
FROM chapters WHERE story_id = %(story_id)s ORDER BY chapter_number

-- export_scenes --
-- Every scene of the story in reading order, with the characters that appear in it.
SELECT sc.id, sc.chapter_id, sc.scene_number, sc.title, sc.content, sc.summary, sc.emotional_tone,
       sc.location_id, sc.created_at,
       COALESCE((SELECT array_agg(character_id ORDER BY character_id) FROM scene_characters x
                 WHERE x.scene_id = sc.id), '{}') AS character_ids
FROM scenes sc JOIN chapters c ON c.id = sc.chapter_id
WHERE c.story_id = %(story_id)s
ORDER BY c.chapter_number, sc.scene_number, sc.created_at, sc.id

-- export_images --
-- The images of the story's scenes, oldest first (a scene's illustration is its newest image).
SELECT i.id, i.scene_id, i.provider, i.model_name, i.prompt, i.negative_prompt, i.seed, i.parameters,
       i.file_path, i.content_hash, i.width, i.height, i.user_rating, i.created_at
FROM images i JOIN scenes sc ON sc.id = i.scene_id JOIN chapters c ON c.id = sc.chapter_id
WHERE c.story_id = %(story_id)s
ORDER BY i.created_at, i.id

-- export_characters --
-- The story's characters.
SELECT id, name, appearance_description, personality, created_at
FROM characters WHERE story_id = %(story_id)s ORDER BY created_at, id

-- export_locations --
-- The story's locations.
SELECT id, name, description, created_at
FROM locations WHERE story_id = %(story_id)s ORDER BY created_at, id

-- export_emotions --
-- Each character's emotions per scene.
SELECT e.id, e.character_id, e.scene_id, e.primary_emotion, e.emotion_intensity, e.secondary_emotions,
       e.emotional_triggers, e.facial_expression_notes, e.body_language_notes, e.created_at
FROM character_emotions e JOIN characters ch ON ch.id = e.character_id
WHERE ch.story_id = %(story_id)s
ORDER BY e.created_at, e.id

-- export_transitions --
-- How characters' emotions change between scenes.
SELECT t.id, t.character_id, t.from_scene_id, t.to_scene_id, t.transition_type, t.transition_cause, t.created_at
FROM emotion_transitions t JOIN characters ch ON ch.id = t.character_id
WHERE ch.story_id = %(story_id)s
ORDER BY t.created_at, t.id

-- export_custom_fields --
-- The story's custom fields.
SELECT id, field_name, field_type, default_value, applies_to, created_at
FROM custom_fields WHERE story_id = %(story_id)s ORDER BY created_at, id

-- export_custom_field_values --
-- The values of the story's custom fields.
SELECT v.id, v.custom_field_id, v.entity_type, v.entity_id, v.field_value, v.created_at
FROM custom_field_values v JOIN custom_fields f ON f.id = v.custom_field_id
WHERE f.story_id = %(story_id)s
ORDER BY v.created_at, v.id

-- import_user_by_email --
-- The user an imported story goes to, made when missing.
INSERT INTO users (email, display_name) VALUES (%(email)s, %(display_name)s)
ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email
RETURNING id

-- import_story_exists --
-- Whether a story with this id is already here.
SELECT EXISTS (SELECT 1 FROM stories WHERE id = %(id)s) AS found

-- import_story --
-- One imported story.
INSERT INTO stories (id, user_id, title, description, genre, style_preference, created_at, updated_at)
VALUES (%(id)s, %(user_id)s, %(title)s, %(description)s, %(genre)s, %(style_preference)s, %(created_at)s,
        %(updated_at)s)

-- import_chapter --
-- One imported chapter.
INSERT INTO chapters (id, story_id, chapter_number, title, content, created_at)
VALUES (%(id)s, %(story_id)s, %(chapter_number)s, %(title)s, %(content)s, %(created_at)s)

-- import_character --
-- One imported character.
INSERT INTO characters (id, story_id, name, appearance_description, personality, created_at)
VALUES (%(id)s, %(story_id)s, %(name)s, %(appearance_description)s, %(personality)s, %(created_at)s)

-- import_location --
-- One imported location.
INSERT INTO locations (id, story_id, name, description, created_at)
VALUES (%(id)s, %(story_id)s, %(name)s, %(description)s, %(created_at)s)

-- import_scene --
-- One imported scene.
INSERT INTO scenes (id, chapter_id, scene_number, title, content, summary, emotional_tone, location_id, created_at)
VALUES (%(id)s, %(chapter_id)s, %(scene_number)s, %(title)s, %(content)s, %(summary)s, %(emotional_tone)s,
        %(location_id)s, %(created_at)s)

-- import_scene_character --
-- A character appearing in an imported scene.
INSERT INTO scene_characters (scene_id, character_id) VALUES (%(scene_id)s, %(character_id)s)

-- import_image --
-- One imported image (its month's partition is made first when missing).
INSERT INTO images (id, scene_id, user_id, provider, model_name, prompt, negative_prompt, seed, parameters,
                    file_path, content_hash, width, height, user_rating, created_at)
SELECT %(id)s, %(scene_id)s, %(user_id)s, %(provider)s, %(model_name)s, %(prompt)s, %(negative_prompt)s,
       %(seed)s, %(parameters)s, %(file_path)s, %(content_hash)s, %(width)s, %(height)s, %(user_rating)s,
       %(created_at)s::TIMESTAMPTZ
FROM (SELECT ensure_images_partition((%(created_at)s::TIMESTAMPTZ)::DATE)) p

-- import_emotion --
-- One imported character emotion.
INSERT INTO character_emotions (id, character_id, scene_id, primary_emotion, emotion_intensity,
                                secondary_emotions, emotional_triggers, facial_expression_notes,
                                body_language_notes, created_at)
VALUES (%(id)s, %(character_id)s, %(scene_id)s, %(primary_emotion)s, %(emotion_intensity)s,
        %(secondary_emotions)s, %(emotional_triggers)s, %(facial_expression_notes)s, %(body_language_notes)s,
        %(created_at)s)

-- import_transition --
-- One imported emotion transition.
INSERT INTO emotion_transitions (id, character_id, from_scene_id, to_scene_id, transition_type,
                                 transition_cause, created_at)
VALUES (%(id)s, %(character_id)s, %(from_scene_id)s, %(to_scene_id)s, %(transition_type)s,
        %(transition_cause)s, %(created_at)s)

-- import_custom_field --
-- One imported custom field.
INSERT INTO custom_fields (id, story_id, field_name, field_type, default_value, applies_to, created_at)
VALUES (%(id)s, %(story_id)s, %(field_name)s, %(field_type)s, %(default_value)s, %(applies_to)s, %(created_at)s)

-- import_custom_field_value --
-- One imported custom field value.
INSERT INTO custom_field_values (id, custom_field_id, entity_type, entity_id, field_value, created_at)
VALUES (%(id)s, %(custom_field_id)s, %(entity_type)s, %(entity_id)s, %(field_value)s, %(created_at)s)

-- media_public_image --
-- Whether a stored file is an image of a published story (then anyone may fetch it).
SELECT EXISTS (
    SELECT 1 FROM images i
    JOIN scenes sc ON sc.id = i.scene_id
    JOIN chapters c ON c.id = sc.chapter_id
    JOIN community_stories cs ON cs.story_id = c.story_id
    WHERE i.file_path = %(path)s
) AS public
