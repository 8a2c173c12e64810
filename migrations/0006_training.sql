-- LoRA training outcome on the LoRA itself: why it failed, and which job trained it.
ALTER TABLE lora_models ADD COLUMN IF NOT EXISTS error_message TEXT;
ALTER TABLE lora_models ADD COLUMN IF NOT EXISTS training_job_id UUID;
CREATE INDEX IF NOT EXISTS idx_lora_models_training_job ON lora_models (training_job_id);
