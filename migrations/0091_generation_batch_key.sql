-- Cross-job batching (the lease_batch_companions statement): a GPU worker that leased a generate_image
-- job takes, in one statement, other pending generate_image jobs that can share its pipeline call. Which
-- ones may is a function of the metadata, computed when a row is inserted (the index below), so the web
-- app's plain-SQL inserts get it too.
--
-- The key is the metadata without what may differ inside one batched call (the prompt and negative
-- prompt, the scene and branch the prompt comes from, seeds, how many images, the per-image re-draw
-- threshold): what is left (model, preset, provider, size, steps, sampler, guidance, LoRAs) must be
-- equal. It is a strong hint, not the final word: the worker resolves each job (a preset's or a story's
-- defaults) and runs apart a job that turned out to differ. Metadata that is not an object has no key
-- (never batched, and its insert cannot fail here).
CREATE FUNCTION generation_batch_key(metadata jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(metadata) = 'object'
                THEN md5((metadata - ARRAY['prompt', 'negative_prompt', 'scene_id', 'branch_id', 'seed',
                                           'seeds', 'count', 'regenerate_below', 'max_regenerations'])::text)
           END
$$;

-- Pending generate_image jobs by key, in queue order: the companions of a batch are one index range.
CREATE INDEX idx_processing_jobs_batch ON processing_jobs
    (generation_batch_key(metadata), priority, created_at)
    WHERE status = 'pending' AND job_type = 'generate_image';
