-- lora_training_create --
-- A LoRA about to be trained (status training); model_file_url is where its file will be, relative to storage.
INSERT INTO lora_models (id, user_id, name, description, model_file_url, trigger_words, training_images_count,
                         status)
VALUES (%(id)s, %(user_id)s, %(name)s, %(description)s, %(model_file_url)s, %(trigger_words)s,
        %(training_images_count)s, 'training')

-- lora_training_job --
-- Link a LoRA to the job that trains it (once enqueued).
UPDATE lora_models SET training_job_id = %(job_id)s WHERE id = %(id)s

-- lora_training_ready --
-- A trained LoRA: its file (relative to storage), image count and trigger words; status ready.
UPDATE lora_models
SET status = 'ready',
    model_file_url = %(model_file_url)s,
    training_images_count = %(training_images_count)s,
    trigger_words = %(trigger_words)s,
    training_job_id = %(job_id)s,
    error_message = NULL
WHERE id = %(id)s

-- lora_training_failed --
-- A LoRA whose training failed for good, with the reason (also on the job's error_message).
UPDATE lora_models
SET status = 'failed', error_message = %(error_message)s, training_job_id = %(job_id)s
WHERE id = %(id)s AND status = 'training'

-- lora_preview_image --
-- The preview image of a trained LoRA with its quality; `parameters` names the LoRA (lora_model_id, preview: true).
-- A retried job that stores the same file again gets the existing row back.
WITH existing AS (
    -- created_at bounds the search to the partitions written since the job was enqueued
    SELECT id FROM images
    WHERE job_id = %(job_id)s AND content_hash = %(content_hash)s AND created_at >= %(job_created_at)s
    LIMIT 1
), inserted AS (
    INSERT INTO images (user_id, job_id, provider, model_name, prompt, negative_prompt, seed, parameters,
                        file_path, content_hash, width, height, timings, quality, quality_score)
    SELECT %(user_id)s, %(job_id)s, 'local', %(model_name)s, %(prompt)s, '', %(seed)s, %(parameters)s,
           %(file_path)s, %(content_hash)s, %(width)s, %(height)s, %(timings)s, %(quality)s, %(quality_score)s
    WHERE NOT EXISTS (SELECT 1 FROM existing)
    RETURNING id
)
SELECT id FROM inserted UNION ALL SELECT id FROM existing

-- lora_training_get --
-- A LoRA's training state, for watching it.
SELECT id, name, status, model_file_url, training_images_count, trigger_words, error_message, training_job_id
FROM lora_models WHERE id = %(id)s
