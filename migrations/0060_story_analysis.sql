-- Story analysis (analyze_story): story-level figures are rows of story_metrics, read by story, metric type
-- and time (`GET /stories/{id}/metrics?metric_type=&from=&to=`); per-scene scores and the story's latest
-- analysis live in entity_metadata (one value per entity and key, see 0020).
CREATE INDEX IF NOT EXISTS idx_story_metrics_story_type_time ON story_metrics (story_id, metric_type, recorded_at DESC);
