"""`train`: start training a LoRA style from a folder of images and watch it until it is ready."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from enchant_worker.cli.common import open_database, print_json, uuid_arg
from enchant_worker.cli.progress import follow
from enchant_worker.domain.jobs import JobStatus
from enchant_worker.queue import JobQueue
from enchant_worker.sql import q


def register(commands) -> None:
    p = commands.add_parser(
        "train", help="train a LoRA style from a folder of images",
        description="Validate the images, copy them into storage, create the LoRA (status training) and queue "
        "its train_lora job, then show its progress until the LoRA is ready. A worker must be running "
        "(`enchant-worker worker`). Ctrl-C stops watching; the training goes on. Captions come from "
        "IMAGE.txt files beside the images.")  # fmt: skip
    p.add_argument("--name", required=True, help="the LoRA's name")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of 5 to 50 training images")
    p.add_argument(
        "--trigger",
        action="append",
        default=[],
        metavar="WORD",
        help="trigger word put in front of every caption (repeat for several)",
    )
    p.add_argument("--steps", type=int, help="training steps (default: --epochs passes over the images)")
    p.add_argument("--epochs", type=int, help="passes over the images when --steps is not given (default 10)")
    p.add_argument("--rank", type=int, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, help="LoRA alpha (default: the rank)")
    p.add_argument("--learning-rate", type=float, help="default 1e-4")
    p.add_argument("--batch-size", type=int, help="default 1")
    p.add_argument("--resolution", type=int, help="training size in pixels (default: the base model's size)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument(
        "--base-model",
        help="a model of configs/models.toml, a folder under the models folder, "
        "or a diffusers folder's path (default: the configured default model)",
    )
    p.add_argument(
        "--user",
        type=uuid_arg,
        metavar="USER_ID",
        help="train for this user (their LoRA, checked with their rights and tier)",
    )
    p.add_argument("--description", default="")
    p.add_argument("--no-wait", action="store_true", help="print the LoRA and job ids and return at once")
    p.set_defaults(func=cmd_train)  # fmt: skip


def _request(args, settings) -> dict[str, Any]:
    """The training request from the options; unset options keep the request's defaults."""
    from enchant_worker.intake.training import fill_model_defaults

    request: dict[str, Any] = {
        "name": args.name,
        "description": args.description,
        "training_images": [],  # the upload made from --images (the worker reads storage only)
        "trigger_words": args.trigger,
        "base_model": args.base_model,
    }
    options = {  # unset: the defaults intake gives the API too (resolution: the base model's size)
        "max_train_steps": args.steps, "epochs": args.epochs, "rank": args.rank, "alpha": args.alpha,
        "learning_rate": args.learning_rate, "batch_size": args.batch_size, "resolution": args.resolution,
        "seed": args.seed,
    }  # fmt: skip
    request.update({k: v for k, v in options.items() if v is not None})
    fill_model_defaults(request, settings)  # as for the API: base model, its size
    return request


def cmd_train(args) -> int:
    import tempfile

    from enchant_worker.config import get_settings
    from enchant_worker.errors import InvalidJob
    from enchant_worker.handlers.train_lora import dataset_limits
    from enchant_worker.intake import SYSTEM_ACTOR
    from enchant_worker.intake.submit import actor_for_user
    from enchant_worker.intake.training import initiate_lora_training, upload_from_folder
    from enchant_worker.jobspecs.train_lora import parse_training_request
    from enchant_worker.training.dataset import prepare_dataset

    images = Path(args.images).expanduser()
    if not images.is_dir():
        raise InvalidJob(f"--images: {args.images} is not a folder")
    request = _request(args, get_settings())
    # The options and the images first: a mistake is reported before anything is written.
    spec = parse_training_request({**request, "training_images": [str(images)]})
    with tempfile.TemporaryDirectory() as scratch:
        checked = prepare_dataset(spec, Path(scratch) / "dataset", **dataset_limits(get_settings()))
    settings, db = open_database()
    with db.connection() as conn, conn.transaction():
        actor = actor_for_user(conn, args.user) if args.user else SYSTEM_ACTOR
        request["training_images"] = [str(upload_from_folder(conn, actor, settings, images))]
        lora_id, job_id = initiate_lora_training(
            conn, actor, settings, request, image_count=len(checked.images)
        )
    if args.no_wait:
        print_json({"lora_model_id": lora_id, "job_id": job_id})
        return 0
    print(f"LoRA {lora_id} queued for training as job {job_id}", file=sys.stderr)
    with db.connection() as conn:
        return watch(conn, lora_id, job_id)


def watch(conn, lora_id: uuid.UUID, job_id: uuid.UUID) -> int:
    """Show the job's progress until it finishes; 0 when the LoRA is ready, 1 when it failed."""
    try:
        job = follow(JobQueue(conn), job_id)
    except KeyboardInterrupt:
        print(
            f"\nstopped watching; the training goes on (job {job_id}, `enchant-worker job {job_id}`)",
            file=sys.stderr,
        )
        return 130
    lora = conn.execute(q("lora_training_get"), {"id": lora_id}).fetchone()
    if job.status == JobStatus.COMPLETED and lora and lora["status"] == "ready":
        result = job.result or {}
        print_json(
            {
                "lora_model_id": lora_id,
                "job_id": job_id,
                "status": "ready",
                "model_file_url": lora["model_file_url"],
                "kohya_file": result.get("kohya_file"),
                "preview_image": result.get("preview_image"),
                "steps": result.get("steps"),
                "final_loss": result.get("final_loss"),
                "flagged_images": result.get("flagged_images"),
            }
        )
        return 0
    reason = (lora or {}).get("error_message") or job.error_message or job.status
    print(f"error: training of LoRA {lora_id} did not finish: {reason}", file=sys.stderr)
    return 1
