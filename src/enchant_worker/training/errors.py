"""Errors of LoRA training. They join the project's hierarchy (`enchant_worker.errors`)."""

from __future__ import annotations

from enchant_worker.errors import EnchantError, InvalidJob


class TrainingDiverged(InvalidJob):
    """The training loss became NaN or infinite; lower learning_rate (or use mixed_precision 'bf16' / 'no')
    and train again. The last good checkpoint was kept."""


class CheckpointWriteFailed(EnchantError):
    """A training checkpoint could not be written; the previous checkpoint is intact."""


class CheckpointMismatch(InvalidJob):
    """The checkpoint in the work folder belongs to a different training request or data set."""
