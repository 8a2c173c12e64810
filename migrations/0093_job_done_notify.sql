-- A job's end wakes whoever waits on it (the AUTOMATIC1111 and OpenAI routes answer one HTTP request per
-- job): its id on enchant_done when it completes, fails for good or is cancelled. A row trigger whose WHEN
-- is checked in C, so the other updates of a job (lease, heartbeat, retry) call no function.
CREATE FUNCTION processing_jobs_notify_done() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('enchant_done', NEW.id::TEXT);
    RETURN NULL;
END $$;
CREATE TRIGGER processing_jobs_done AFTER UPDATE OF status ON processing_jobs
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status <> NEW.status)
    EXECUTE FUNCTION processing_jobs_notify_done();
