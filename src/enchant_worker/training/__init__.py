"""LoRA training: request, images, trainer, checkpoints, export. Knows nothing of the queue.

Typical use (what the `train_lora` handler does):

    spec = parse_training_request(job.metadata)
    dataset = prepare_dataset(spec, storage / "lora" / id / "images")     # or load_dataset() on resume
    base = resolve_base_model(spec.base_model, settings.models_dir)
    result = train_lora(spec, dataset, base, work_dir, output_dir, TrainingHooks(...))
"""

from enchant_worker.jobspecs.train_lora import LoRATrainingSpec, parse_training_request
from enchant_worker.training.base_model import BaseModel, load_base_model, resolve_base_model
from enchant_worker.training.dataset import PreparedDataset, load_dataset, prepare_dataset
from enchant_worker.training.errors import CheckpointMismatch, CheckpointWriteFailed, TrainingDiverged

__all__ = [
    "BaseModel",
    "CheckpointMismatch",
    "CheckpointWriteFailed",
    "LoRATrainingSpec",
    "PreparedDataset",
    "TrainingDiverged",
    "load_base_model",
    "load_dataset",
    "parse_training_request",
    "prepare_dataset",
    "resolve_base_model",
]
