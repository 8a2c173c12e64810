-- Image quality (generation.image_quality, generation.clip_alignment), written by generate_image for
-- every image it stores. Columns rather than keys of `parameters`: parameters are what was asked, the
-- quality is what came out; and a typed score gives `min_quality` a plain comparison and a range check.
--   quality        the whole analysis: exposure, contrast, sharpness, flags (black, blank, nan, ...),
--                  prompt alignment or why it was skipped, the seeds tried when re-generated
--   quality_score  its technical score, 0-1; NULL where not analysed (older images, unreadable files),
--                  which a min_quality filter leaves out
-- No index: the lists filter the newest images first (idx_images_created) and the score only prunes.
ALTER TABLE images ADD COLUMN quality JSONB;
ALTER TABLE images ADD COLUMN quality_score REAL CHECK (quality_score BETWEEN 0 AND 1);
