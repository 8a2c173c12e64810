-- lock_user_events --
-- Serialise one user's event batches for the rest of the transaction (advisory lock class 4550244
-- 'Enc'+1), so two concurrent batches cannot both slip under the per-minute limit.
SELECT pg_advisory_xact_lock(4550244, hashtext(%(user_id)s::text))

-- recent_user_events --
-- How many events the user sent in the last `window_s` seconds, and when the `nth` newest of them
-- (counted from the oldest) leaves the window: the Retry-After of a refused batch.
WITH recent AS (
    SELECT created_at FROM user_analytics_events
    WHERE user_id = %(user_id)s AND created_at > NOW() - make_interval(secs => %(window_s)s)
)
SELECT (SELECT count(*) FROM recent) AS events,
       (SELECT EXTRACT(EPOCH FROM created_at + make_interval(secs => %(window_s)s) - NOW())
        FROM recent ORDER BY created_at OFFSET GREATEST(%(nth)s - 1, 0) LIMIT 1) AS frees_in_s

-- insert_events --
-- A whole batch in one statement: the events of one request share their user, address and client.
INSERT INTO user_analytics_events (user_id, event_type, event_data, session_id, ip_address, user_agent)
SELECT %(user_id)s, t.event_type, t.event_data::jsonb, t.session_id, %(ip_address)s::inet, %(user_agent)s
FROM unnest(%(event_type)s::text[], %(event_data)s::text[], %(session_id)s::text[])
     AS t(event_type, event_data, session_id)

-- rollup_story_events --
-- Upsert the daily reader metrics of every story with events on the UTC days [from_day, to_day]: each
-- day is recomputed from the raw events and replaces the row of that day, so running it again for the
-- same days never double counts. Raw events expire by whole UTC days (expire_events), so a day is either
-- all there or gone; a gone day produces no row and keeps what was recorded.
WITH span AS (
    SELECT %(from_day)s::date AS first_day, %(to_day)s::date AS last_day
), raw AS (
    -- The events of the span, the fields the metrics need pulled out of event_data once.
    SELECT e.event_type, COALESCE(e.user_id::text, e.session_id) AS who, e.user_id, e.created_at,
           (e.created_at AT TIME ZONE 'UTC')::date AS day,
           e.event_data ->> CASE WHEN e.event_type = 'image_rating' THEN 'image_id' ELSE 'story_id' END AS ref,
           CASE WHEN jsonb_typeof(e.event_data -> 'seconds') = 'number' THEN (e.event_data ->> 'seconds')::numeric END
               AS seconds,
           e.event_data ->> 'rating' AS rating
    FROM span, user_analytics_events e
    WHERE e.event_type IN ('story_view', 'reading_progress', 'image_rating')
      AND e.created_at >= (span.first_day::timestamp AT TIME ZONE 'UTC')
      AND e.created_at < ((span.last_day + 1)::timestamp AT TIME ZONE 'UTC')
), events AS (
    -- The id each is about: the story (story events) or the image (ratings), as validated at intake; the
    -- pattern guards rows written by plain SQL (a bad id is skipped, not an error).
    SELECT event_type, who, user_id, created_at, day, seconds, rating,
           CASE WHEN ref ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                THEN ref::uuid END AS ref
    FROM raw
), reading AS (
    -- Views (and distinct viewers: the user, else the session) and reading time per story and day.
    SELECT ref AS story_id, day,
           count(*) FILTER (WHERE event_type = 'story_view') AS views,
           count(DISTINCT who) FILTER (WHERE event_type = 'story_view') AS viewers,
           COALESCE(sum(seconds) FILTER (WHERE event_type = 'reading_progress'), 0) AS reading_seconds,
           count(DISTINCT who) FILTER (WHERE event_type = 'reading_progress') AS readers
    FROM events
    WHERE event_type IN ('story_view', 'reading_progress') AND ref IS NOT NULL
    GROUP BY 1, 2
), rated AS (
    -- Each rater's latest rating of an image on a day (rating twice the same day counts once).
    SELECT DISTINCT ON (who, ref, day) ref AS image_id, day, rating::numeric AS rating
    FROM events
    WHERE event_type = 'image_rating' AND ref IS NOT NULL AND rating IN ('1', '2', '3', '4', '5')
    ORDER BY who, ref, day, created_at DESC
), image_story AS (
    -- The story of each rated image (its scene's), looked up once per image.
    SELECT i.id AS image_id, entity_story_id('scene', i.scene_id) AS story_id
    FROM images i WHERE i.id IN (SELECT image_id FROM rated)
), ratings AS (
    -- Per story and day: how many ratings, and their mean.
    SELECT s.story_id, r.day, count(*) AS ratings, avg(r.rating) AS mean_rating
    FROM rated r JOIN image_story s USING (image_id)
    GROUP BY 1, 2
), daily AS (
    SELECT COALESCE(g.story_id, r.story_id) AS story_id, COALESCE(g.day, r.day) AS day,
           COALESCE(g.views, 0) AS views, COALESCE(g.viewers, 0) AS viewers,
           COALESCE(g.reading_seconds, 0) AS reading_seconds, COALESCE(g.readers, 0) AS readers,
           COALESCE(r.ratings, 0) AS ratings, r.mean_rating
    FROM reading g FULL JOIN ratings r ON r.story_id = g.story_id AND r.day = g.day
), metrics AS (
    -- One row per metric; stories that still exist only; no mean rating on a day without ratings.
    SELECT d.story_id, d.day, m.metric_type, m.value
    FROM daily d
    JOIN stories st ON st.id = d.story_id
    CROSS JOIN LATERAL (VALUES ('views', d.views::numeric), ('unique_viewers', d.viewers::numeric),
                               ('reading_seconds', d.reading_seconds), ('readers', d.readers::numeric),
                               ('image_ratings', d.ratings::numeric), ('mean_image_rating', round(d.mean_rating, 4)))
        AS m(metric_type, value)
    WHERE m.value IS NOT NULL
)
INSERT INTO story_metrics (story_id, metric_type, metric_value, metadata, recorded_at)
SELECT story_id, metric_type, value, jsonb_build_object('period', 'day', 'day', day, 'source', 'events'),
       day::timestamp AT TIME ZONE 'UTC'
FROM metrics
ON CONFLICT (story_id, metric_type, recorded_at) WHERE (metadata ->> 'period') = 'day'
DO UPDATE SET metric_value = EXCLUDED.metric_value, metadata = EXCLUDED.metadata
RETURNING story_id, metric_type

-- upsert_image_ratings --
-- Keep each rater's latest rating of each image rated in [from, to): a later rating replaces an earlier
-- one, an older event never replaces a newer rating (so re-running an old span changes nothing).
INSERT INTO image_ratings (image_id, user_id, rating, rated_at)
SELECT DISTINCT ON (image_id, user_id) image_id, user_id, rating, created_at
FROM (
    SELECT (e.event_data ->> 'image_id')::uuid AS image_id, e.user_id, (e.event_data ->> 'rating')::smallint AS rating,
           e.created_at
    FROM user_analytics_events e
    WHERE e.event_type = 'image_rating' AND e.user_id IS NOT NULL
      AND e.created_at >= %(from_ts)s AND e.created_at < %(to_ts)s
      AND e.event_data ->> 'image_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
      AND e.event_data ->> 'rating' IN ('1', '2', '3', '4', '5')
) r
ORDER BY image_id, user_id, created_at DESC
ON CONFLICT (image_id, user_id) DO UPDATE SET rating = EXCLUDED.rating, rated_at = EXCLUDED.rated_at
WHERE image_ratings.rated_at < EXCLUDED.rated_at
RETURNING image_id

-- refresh_image_user_rating --
-- images.user_rating of these images: the mean of every rater's latest rating (NULL when none is left).
UPDATE images i
SET user_rating = (SELECT round(avg(r.rating), 2) FROM image_ratings r WHERE r.image_id = i.id)
WHERE i.id = ANY(%(ids)s::uuid[])

-- expire_events --
-- Delete up to `limit` raw events older than `before` (the caller passes the start of a UTC day); the
-- caller repeats until fewer come back, so one run never holds a huge delete open.
DELETE FROM user_analytics_events
WHERE id IN (SELECT id FROM user_analytics_events WHERE created_at < %(before)s ORDER BY created_at LIMIT %(limit)s)

-- prune_image_ratings --
-- Forget the ratings of images that no longer exist (image_ratings has no foreign key to images).
DELETE FROM image_ratings r WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = r.image_id)

-- oldest_event --
-- When the oldest raw event still kept was received (NULL when none is).
SELECT min(created_at) AS at FROM user_analytics_events

-- event_aggregates --
-- Counts of raw events per UTC day and type, optionally of one type, in [from, to) (admins).
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, event_type, count(*) AS events,
       count(DISTINCT user_id) AS users, count(DISTINCT session_id) AS sessions
FROM user_analytics_events
WHERE (%(event_type)s::text IS NULL OR event_type = %(event_type)s)
  AND (%(from_ts)s::timestamptz IS NULL OR created_at >= %(from_ts)s)
  AND (%(to_ts)s::timestamptz IS NULL OR created_at < %(to_ts)s)
GROUP BY 1, 2
ORDER BY 1, 2
LIMIT %(limit)s
