-- The generate_image handler looks up a job's images (a retried job must not store them twice).
CREATE INDEX idx_images_job ON images (job_id);
