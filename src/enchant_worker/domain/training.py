"""The `train_lora` job as every caller enqueues it (CLI, API, web app): type, entity, priority.

No I/O and no ML imports, so the control plane can use it too.
"""

from __future__ import annotations

import uuid
from typing import Any

from enchant_worker.domain.jobs import NewJob

TRAIN_LORA_JOB_TYPE = "train_lora"
LORA_ENTITY_TYPE = "lora_model"
# Worse (higher) than generate_image's default 5: a waiting illustration preempts training
# (the worker's preemption check only yields to strictly better priority).
TRAIN_LORA_PRIORITY = 8
TRAIN_LORA_MAX_ATTEMPTS = 3


def train_lora_job(
    lora_model_id: uuid.UUID,
    request: dict[str, Any],
    *,
    user_id: uuid.UUID | None = None,
    priority: int = TRAIN_LORA_PRIORITY,
) -> NewJob:
    """The job that trains `lora_model_id`; `request` is the training request (the job's metadata)."""
    return NewJob(
        TRAIN_LORA_JOB_TYPE,
        {**request, "lora_model_id": str(lora_model_id)},
        priority=priority,
        max_attempts=TRAIN_LORA_MAX_ATTEMPTS,
        entity_type=LORA_ENTITY_TYPE,
        entity_id=lora_model_id,
        user_id=user_id,
        # one job per LoRA, however often the request is sent
        idempotency_key=f"{TRAIN_LORA_JOB_TYPE}:{lora_model_id}",
    )
