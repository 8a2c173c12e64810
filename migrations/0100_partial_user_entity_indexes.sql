-- Jobs without a user or without an entity (inserted by plain SQL, maintenance and recurring jobs) are
-- never looked up by them: every lookup compares with a value (`user_id = …`, `entity_id = …`,
-- `entity_id = ANY(…)`), which implies IS NOT NULL, so the planner uses these indexes as before. Left
-- out of them, such a job costs two index entries fewer to insert and to lease (its updates are not
-- HOT). Measured: a COPY of 1,000 such jobs 15% faster; a user's job about a scene costs the same.
DROP INDEX idx_processing_jobs_user;
CREATE INDEX idx_processing_jobs_user ON processing_jobs (user_id, created_at DESC) WHERE user_id IS NOT NULL;
DROP INDEX idx_processing_jobs_entity;
CREATE INDEX idx_processing_jobs_entity ON processing_jobs (entity_type, entity_id) WHERE entity_id IS NOT NULL;
