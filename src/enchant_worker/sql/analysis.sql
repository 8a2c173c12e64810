-- analysis_story --
-- The story analysed, with its owner (the job's result names it).
SELECT id, user_id, title FROM stories WHERE id = %(id)s

-- analysis_chapters --
-- The story's chapters in order, with their text.
SELECT id, chapter_number, title, coalesce(content, '') AS content
FROM chapters WHERE story_id = %(story_id)s ORDER BY chapter_number

-- analysis_scenes --
-- The story's active scenes in order: text, location, the characters present (in order of their first
-- mention in the text, unnamed ones last) and each one's emotion.
SELECT s.id, s.chapter_id, s.scene_number, coalesce(s.content, '') AS content, l.name AS location,
       coalesce((SELECT array_agg(ch.name ORDER BY nullif(strpos(s.content, ch.name), 0) NULLS LAST, ch.name)
                 FROM scene_characters sc JOIN characters ch ON ch.id = sc.character_id
                 WHERE sc.scene_id = s.id), '{}') AS characters,
       coalesce((SELECT json_agg(json_build_object('character', ch.name, 'emotion', e.primary_emotion,
                                                   'intensity', e.emotion_intensity) ORDER BY ch.name)
                 FROM character_emotions e JOIN characters ch ON ch.id = e.character_id
                 WHERE e.scene_id = s.id), '[]') AS emotions
FROM scenes s
JOIN chapters c ON c.id = s.chapter_id
LEFT JOIN locations l ON l.id = s.location_id
WHERE c.story_id = %(story_id)s AND s.retired_at IS NULL
ORDER BY c.chapter_number, s.scene_number

-- analysis_get --
-- A stored analysis value of an entity (key 'analysis.story' of a story, 'analysis.quality' of a scene).
SELECT metadata_value AS value, created_at AS computed_at
FROM entity_metadata WHERE entity_type = %(entity_type)s AND entity_id = %(entity_id)s AND metadata_key = %(key)s

-- analysis_put --
-- Store analysis values of many entities of one type under one key (the newest replaces the last).
INSERT INTO entity_metadata (entity_type, entity_id, metadata_key, metadata_value)
SELECT %(entity_type)s, id, %(key)s, value
FROM unnest(%(ids)s::uuid[], %(values)s::jsonb[]) AS v(id, value)
ON CONFLICT (entity_type, entity_id, metadata_key)
DO UPDATE SET metadata_value = EXCLUDED.metadata_value, created_at = NOW()

-- analysis_metrics_add --
-- A story's figures from one analysis, as story_metrics rows (their metadata names the content hash).
INSERT INTO story_metrics (story_id, metric_type, metric_value, metadata)
SELECT %(story_id)s, t, v, %(metadata)s
FROM unnest(%(types)s::text[], %(values)s::numeric[]) AS m(t, v)

-- analysis_metrics --
-- A story's metrics of any kind (analysis, analytics rollups), newest first, by type and time window.
SELECT id, metric_type, metric_value::float8 AS metric_value, metadata, recorded_at
FROM story_metrics
WHERE story_id = %(story_id)s
  AND (%(metric_type)s::text IS NULL OR metric_type = %(metric_type)s)
  AND (%(since)s::timestamptz IS NULL OR recorded_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR recorded_at < %(until)s)
ORDER BY recorded_at DESC, metric_type
LIMIT %(limit)s

-- analysis_console_stories --
-- Stories for the console, newest first, with their owner and latest analysis (overall score, when).
SELECT s.id, s.title, coalesce(u.email, '—') AS owner,
       (SELECT count(*) FROM chapters c WHERE c.story_id = s.id) AS chapters,
       (m.metadata_value -> 'insights' ->> 'overall_quality')::float8 AS overall, m.created_at AS analysed_at
FROM stories s
LEFT JOIN users u ON u.id = s.user_id
LEFT JOIN entity_metadata m ON m.entity_type = 'story' AND m.entity_id = s.id AND m.metadata_key = 'analysis.story'
ORDER BY s.created_at DESC, s.id
LIMIT %(limit)s

-- analysis_console_story --
-- One story for the console, with its owner.
SELECT s.id, s.title, coalesce(u.email, '—') AS owner FROM stories s LEFT JOIN users u ON u.id = s.user_id
WHERE s.id = %(id)s
