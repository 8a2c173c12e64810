-- lora_training_ready --
-- A trained LoRA: its file (relative to storage), image count and trigger words; status ready.
UPDATE lora_models
SET status = 'ready',
    model_file_url = %(model_file_url)s,
    training_images_count = %(training_images_count)s,
    trigger_words = %(trigger_words)s
WHERE id = %(id)s

-- lora_training_failed --
-- A LoRA whose training failed for good (the reason is on the job's error_message).
UPDATE lora_models SET status = 'failed' WHERE id = %(id)s AND status = 'training'
