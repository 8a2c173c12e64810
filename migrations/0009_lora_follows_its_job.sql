-- A LoRA in training follows its train_lora job to the end, whichever path ends it: the handler marks
-- it ready or failed itself, but a job cancelled while pending, or failed by the reaper after its
-- worker died once too often, never reaches the handler. Then this marks the LoRA failed with why.
CREATE FUNCTION lora_follows_training_job() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lora_models
    SET status = 'failed',
        error_message = COALESCE(NEW.error_message, 'training job ' || NEW.status),
        training_job_id = NEW.id
    WHERE id = NEW.entity_id AND status = 'training';
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_lora_failed AFTER UPDATE OF status ON processing_jobs
    FOR EACH ROW
    WHEN (NEW.job_type = 'train_lora' AND NEW.entity_type = 'lora_model'
          AND NEW.status IN ('failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION lora_follows_training_job();
