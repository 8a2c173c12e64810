-- community_publish --
-- Publishes a story, or updates its listing when it is already published (one listing per story).
INSERT INTO community_stories (story_id, published_by, title, description, tags, category)
VALUES (%(story_id)s, %(published_by)s, %(title)s, %(description)s, %(tags)s, %(category)s)
ON CONFLICT (story_id) DO UPDATE
SET title = EXCLUDED.title, description = EXCLUDED.description, tags = EXCLUDED.tags, category = EXCLUDED.category
RETURNING *, (xmax = 0) AS created

-- community_get --
-- One listing.
SELECT * FROM community_stories WHERE id = %(id)s

-- community_update --
-- Changes the given fields of a listing (each `set_*` flag says whether its field changes).
UPDATE community_stories SET
    title = CASE WHEN %(set_title)s THEN %(title)s ELSE title END,
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    tags = CASE WHEN %(set_tags)s THEN %(tags)s ELSE tags END,
    category = CASE WHEN %(set_category)s THEN %(category)s ELSE category END,
    is_featured = CASE WHEN %(set_is_featured)s THEN %(is_featured)s ELSE is_featured END
WHERE id = %(id)s
RETURNING *

-- community_unpublish --
-- Removes a listing (its interactions and views go with it).
DELETE FROM community_stories WHERE id = %(id)s RETURNING id

-- community_list --
-- One page of listings: filtered by tag, category, featured and words in the title or description;
-- newest first, or popular (likes, then views) first; from a keyset position (the last row's sort key).
-- `total` counts every matching listing, not only those after the position.
WITH matching AS (
    SELECT cs.*, coalesce(cs.like_count, 0) AS likes, coalesce(cs.view_count, 0) AS views
    FROM community_stories cs
    WHERE (%(tag)s::TEXT IS NULL OR %(tag)s = ANY (cs.tags))
      AND (%(category)s::TEXT IS NULL OR cs.category = %(category)s)
      AND (%(featured)s::BOOLEAN IS NULL OR cs.is_featured = %(featured)s)
      AND (%(q)s::TEXT IS NULL OR cs.title ILIKE '%%' || %(q)s || '%%' OR cs.description ILIKE '%%' || %(q)s || '%%')
)
SELECT m.*, (SELECT count(*) FROM matching) AS total
FROM matching m
WHERE %(after_id)s::UUID IS NULL
   OR (%(sort)s = 'popular' AND (m.likes, m.views, m.published_at, m.id)
        < (%(after_likes)s::INTEGER, %(after_views)s::INTEGER, %(after_published)s::TIMESTAMPTZ, %(after_id)s::UUID))
   OR (%(sort)s <> 'popular' AND (m.published_at, m.id) < (%(after_published)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY CASE WHEN %(sort)s = 'popular' THEN m.likes END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'popular' THEN m.views END DESC NULLS LAST,
         m.published_at DESC, m.id DESC
LIMIT %(limit)s

-- community_interaction_add --
-- A like, bookmark, share or comment; a second like or bookmark by the same user is ignored (no row).
INSERT INTO community_interactions (user_id, story_id, interaction_type, content)
VALUES (%(user_id)s, %(story_id)s, %(interaction_type)s, %(content)s)
ON CONFLICT (story_id, user_id, interaction_type) WHERE interaction_type IN ('like', 'bookmark') DO NOTHING
RETURNING *

-- community_interaction_remove --
-- Takes back a like or a bookmark.
DELETE FROM community_interactions
WHERE story_id = %(story_id)s AND user_id = %(user_id)s AND interaction_type = %(interaction_type)s
RETURNING id

-- community_interaction_mine --
-- Whether the user likes and has bookmarked the story.
SELECT bool_or(interaction_type = 'like') AS liked, bool_or(interaction_type = 'bookmark') AS bookmarked
FROM community_interactions WHERE story_id = %(story_id)s AND user_id = %(user_id)s

-- community_comment_pressure --
-- How many comments the user wrote in the window, and whether this text was already posted on this story.
SELECT count(*) FILTER (WHERE created_at > NOW() - make_interval(secs => %(window_s)s)) AS recent,
       bool_or(story_id = %(story_id)s AND content = %(content)s
               AND created_at > NOW() - make_interval(secs => %(duplicate_s)s)) AS duplicate
FROM community_interactions
WHERE user_id = %(user_id)s AND interaction_type = 'comment'
  AND created_at > NOW() - make_interval(secs => GREATEST(%(window_s)s, %(duplicate_s)s))

-- community_comments --
-- A listing's comments, newest first, with their authors' names, from a keyset position.
SELECT i.id, i.user_id, u.display_name AS author, i.content, i.created_at
FROM community_interactions i LEFT JOIN users u ON u.id = i.user_id
WHERE i.story_id = %(story_id)s AND i.interaction_type = 'comment'
  AND (%(after_created)s::TIMESTAMPTZ IS NULL
       OR (i.created_at, i.id) < (%(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY i.created_at DESC, i.id DESC
LIMIT %(limit)s

-- community_comment_get --
-- One comment.
SELECT * FROM community_interactions WHERE id = %(id)s AND interaction_type = 'comment'

-- community_comment_delete --
-- Deletes one comment.
DELETE FROM community_interactions WHERE id = %(id)s AND interaction_type = 'comment' RETURNING id

-- community_views_record --
-- A batch of views: rows new for their (story, viewer, day) are kept, and each story's view_count grows by
-- exactly the number of new rows, in the same statement.
WITH seen AS (
    INSERT INTO community_views (story_id, viewer, day)
    SELECT v.story_id, v.viewer, v.day
    FROM unnest(%(story_ids)s::UUID[], %(viewers)s::TEXT[], %(days)s::DATE[]) AS v (story_id, viewer, day)
    WHERE EXISTS (SELECT 1 FROM community_stories cs WHERE cs.id = v.story_id)
    ON CONFLICT DO NOTHING
    RETURNING story_id
), counts AS (
    SELECT story_id, count(*) AS n FROM seen GROUP BY story_id
)
UPDATE community_stories cs SET view_count = cs.view_count + counts.n
FROM counts WHERE cs.id = counts.story_id
RETURNING cs.id

-- community_public_loras --
-- Public LoRA styles, most downloaded first, from a keyset position.
SELECT id, name, description, trigger_words, strength_range, coalesce(download_count, 0) AS download_count,
       created_at
FROM lora_models
WHERE is_public AND status = 'ready'
  AND (%(after_id)s::UUID IS NULL OR (coalesce(download_count, 0), created_at, id)
       < (%(after_count)s::INTEGER, %(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY coalesce(download_count, 0) DESC, created_at DESC, id DESC
LIMIT %(limit)s

-- community_public_presets --
-- Public generation presets, most used first, from a keyset position.
SELECT id, name, description, provider, model_name, parameters, style_modifiers,
       coalesce(usage_count, 0) AS usage_count, created_at
FROM generation_presets
WHERE is_public
  AND (%(after_id)s::UUID IS NULL OR (coalesce(usage_count, 0), created_at, id)
       < (%(after_count)s::INTEGER, %(after_created)s::TIMESTAMPTZ, %(after_id)s::UUID))
ORDER BY coalesce(usage_count, 0) DESC, created_at DESC, id DESC
LIMIT %(limit)s
