-- Warm-model affinity (README "Affinity"): a generate_image job's base model and LoRA set, stored at
-- insert (plain SQL inserts too) so that the lease compares them with what a worker has resident without
-- parsing metadata. Other job types need no model: both columns stay NULL.

-- The job's LoRAs as '<model>|<lora>' keys, sorted: a LoRA is loaded into one base model, so the same
-- file on another model is another key. A LoRA is named as the job names it (lora_model_id, its `id`
-- spelling, else name; 'NAME:STRENGTH' strings without the strength). Metadata of the wrong shape gives
-- an empty set: the job is refused later, by its validation, with the field named, never at insert.
CREATE FUNCTION job_lora_keys(model TEXT, metadata JSONB) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(array_agg(DISTINCT model || '|' || lora ORDER BY model || '|' || lora), '{}')
    FROM (
        SELECT CASE jsonb_typeof(e)
                   WHEN 'object' THEN COALESCE(e->>'lora_model_id', e->>'id', e->>'name')
                   WHEN 'string' THEN regexp_replace(e #>> '{}', ':[^:]*$', '')
               END AS lora
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(metadata->'loras') = 'array'
                                       THEN metadata->'loras' ELSE '[]'::jsonb END) AS e
    ) named
    WHERE lora IS NOT NULL AND lora <> ''
$$;

-- affinity_model: the model the job names ('' = none: the default model, or its preset's).
ALTER TABLE processing_jobs
    ADD COLUMN affinity_model TEXT GENERATED ALWAYS AS (
        CASE WHEN job_type = 'generate_image' THEN COALESCE(metadata->>'model', '') END) STORED,
    ADD COLUMN affinity_loras TEXT[] GENERATED ALWAYS AS (
        CASE WHEN job_type = 'generate_image'
             THEN job_lora_keys(COALESCE(metadata->>'model', ''), metadata) END) STORED;

-- What each worker reported resident at its last heartbeat ({"models": [...], "loras": [...]}), for admins.
ALTER TABLE workers ADD COLUMN resident JSONB NOT NULL DEFAULT '{}';
