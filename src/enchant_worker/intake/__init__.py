"""Intake: how work enters the queue. One authorization step for job input (the caller's rights on
every row and file a job names), roles and subscription tiers (caps, quotas), uploads and LoRA
training initiation — shared by the API, the CLI and the worker's re-check. Torch-free."""

from enchant_worker.intake.actor import ADMIN, SYSTEM, SYSTEM_ACTOR, USER, Actor
from enchant_worker.intake.submit import JobRequest, Recheck, Rechecks, checked_spec, submit

__all__ = [
    "ADMIN",
    "SYSTEM",
    "SYSTEM_ACTOR",
    "USER",
    "Actor",
    "JobRequest",
    "Recheck",
    "Rechecks",
    "checked_spec",
    "submit",
]
