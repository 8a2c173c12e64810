"""`models build-tiny`, `models list`, `generate`: base models and scene illustration from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from enchant_worker.cli.common import print_json, uuid_arg
from enchant_worker.cli.progress import follow
from enchant_worker.db.connection import one
from enchant_worker.storage import remote, where


def register(commands) -> None:
    p = commands.add_parser(
        "models",
        help="base models: list them, build the tiny one",
        description="The base models of configs/models.toml (ENCHANT_MODELS_CONFIG).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser(
        "build-tiny",
        help="build the tiny random SD 1.5-shaped model (no download)",
        description="Build the tiny randomly initialised SD 1.5-shaped pipeline (UNet, VAE, "
        "CLIP text encoder, locally written tokenizer files, scheduler). Generation builds "
        "it by itself when it is missing.",
    )
    b.add_argument("--path", type=Path, help="where to write it (default: ENCHANT_MODELS_DIR/tiny-sd)")
    b.set_defaults(func=cmd_build_tiny)
    ls = actions.add_parser(
        "list", help="list the configured base models", description="List the configured base models."
    )
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=cmd_models_list)

    g = commands.add_parser(
        "generate",
        help="illustrate a scene or a prompt (enqueues a generate_image job)",
        description="Enqueue a generate_image job. With --wait (the default in a terminal) show its progress "
        "and print the image paths once a worker has run it; otherwise print the job id.",
    )
    what = g.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--scene", metavar="ID", type=uuid_arg, help="the scene to illustrate (prompt built from it)"
    )
    what.add_argument("--prompt", metavar="TEXT", help="a prompt of your own")
    g.add_argument(
        "--lora",
        metavar="NAME:STRENGTH",
        action="append",
        default=[],
        help="a LoRA by name (a lora_models row, or NAME.safetensors in a LoRA folder); repeatable",
    )
    g.add_argument(
        "--seed", type=int, help="seed of the first image; image i uses seed+i (default: from the job id)"
    )
    g.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    g.add_argument("--count", type=int, help="images in the job (default 1)")
    g.add_argument("--size", metavar="WxH", help="image size, e.g. 512x512 (default: the model's)")
    g.add_argument("--cfg", type=float, help="classifier-free guidance scale")
    g.add_argument("--sampler", help="sampler, e.g. 'Euler', 'DPM++ 2M Karras'")
    g.add_argument("--model", help="base model name (see `models list`)")
    g.add_argument("--preset", help="generation preset, by name or id")
    g.add_argument("--branch", metavar="ID", type=uuid_arg, help="story branch whose character looks apply")
    g.add_argument("--negative-prompt", metavar="TEXT", help="replaces the preset's or the default one")
    g.add_argument(
        "--regenerate-below",
        type=float,
        metavar="SCORE",
        help="draw again (new seed) an image whose quality score (0-1) is lower",
    )
    g.add_argument(
        "--max-regenerations",
        type=int,
        metavar="N",
        help="tries per image with --regenerate-below (1-3, default 1)",
    )
    g.add_argument("--priority", type=int, default=5, help="0 is most urgent (default 5)")
    g.add_argument(
        "--user",
        type=uuid_arg,
        metavar="USER_ID",
        help="for this user: checked with their rights and tier, as the API would",
    )
    g.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for the images (default: when run in a terminal)",
    )
    g.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds")
    g.set_defaults(func=cmd_generate)

    s = commands.add_parser(
        "sample-story",
        help="add a small sample story and illustrate its scenes",
        description="Add a sample story (two scenes, characters with emotions, a location and, on the tiny "
        "model, a LoRA style) and enqueue a generate_image job per scene. With --wait (the default in a "
        "terminal) wait for the images and print their paths.",
    )
    s.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    s.add_argument("--no-enqueue", dest="enqueue", action="store_false", help="only add the story")
    s.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for the images (default: when run in a terminal)",
    )
    s.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds")
    s.set_defaults(func=cmd_sample_story)


# -- models ---------------------------------------------------------------------------------------


def cmd_build_tiny(args) -> int:
    from enchant_worker.config import get_settings
    from enchant_worker.generation.tiny_model import save_tiny_model

    path = args.path or Path(get_settings().models_dir) / "tiny-sd"
    started = time.perf_counter()
    save_tiny_model(path)
    print(path.resolve())
    print(f"built the tiny model in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def cmd_models_list(args) -> int:
    from enchant_worker.config import get_settings
    from enchant_worker.model_catalog import ModelRegistry

    settings = get_settings()
    registry = ModelRegistry.load(Path(settings.models_dir), Path(settings.models_config))
    models = [{**registry.get(name).info(), "default": name == registry.default} for name in registry.names()]
    if args.json:
        print_json(models)
        return 0
    print(f"{'name':16} {'family':6} {'format':11} {'available':9}  path")
    for m in models:
        available = "yes" if m["available"] else "no"
        if m["builtin"] == "tiny" and not Path(m["path"]).exists():
            available = "on use"  # built when first used
        print(
            f"{m['name'][:16] + ('*' if m['default'] else ''):16} {m['family']:6} {m['format']:11} "
            f"{available:9}  {m['path']}"
        )
    print("* the default model", file=sys.stderr)
    return 0


# -- generate -------------------------------------------------------------------------------------


def _metadata(args) -> dict:
    metadata = {
        "scene_id": str(args.scene) if args.scene else None,
        "prompt": args.prompt,
        "loras": list(args.lora) or None,
        "seed": args.seed,
        "steps": args.steps,
        "count": args.count,
        "size": args.size,
        "cfg": args.cfg,
        "sampler": args.sampler,
        "model": args.model,
        "preset": args.preset,
        "branch_id": str(args.branch) if args.branch else None,
        "negative_prompt": args.negative_prompt,
        "regenerate_below": args.regenerate_below,
        "max_regenerations": args.max_regenerations,
    }
    return {k: v for k, v in metadata.items() if v is not None}


def cmd_generate(args) -> int:
    from enchant_worker.cli.common import open_database
    from enchant_worker.handlers.generate_image import JOB_TYPE
    from enchant_worker.handlers.generate_image import validate as validate_generation
    from enchant_worker.intake import SYSTEM_ACTOR, JobRequest, submit
    from enchant_worker.intake.submit import actor_for_user
    from enchant_worker.queue import JobQueue

    # 1. Check and enqueue through intake (the spec, every row it names): a mistake is told at once
    metadata = _metadata(args)
    validate_generation(metadata)
    settings, db = open_database()
    conn = db.open()
    actor = actor_for_user(conn, args.user) if args.user else SYSTEM_ACTOR
    job_id = submit(conn, actor, JobRequest(JOB_TYPE, metadata, priority=args.priority), settings)
    wait = sys.stdout.isatty() if args.wait is None else args.wait
    if not wait:
        print(job_id)
        print(
            f"queued {JOB_TYPE} job {job_id}; a worker runs it (`enchant-worker worker`), "
            f"`enchant-worker job {job_id}` shows it",
            file=sys.stderr,
        )
        return 0

    # 3. Wait, showing progress, and print the image paths
    print(f"queued {JOB_TYPE} job {job_id}", file=sys.stderr)
    try:
        done = follow(JobQueue(conn), job_id, args.timeout)
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; the job goes on (`enchant-worker cancel {job_id}` stops it)", file=sys.stderr
        )
        return 130
    if done is None:
        print(
            f"error: job {job_id} is still running after {args.timeout:g} s; "
            f"`enchant-worker job {job_id}` shows it later",
            file=sys.stderr,
        )
        return 1
    if done.status != "completed":
        print(
            f"error: job {job_id} {done.status}" + (f": {done.error_message}" if done.error_message else ""),
            file=sys.stderr,
        )
        return 1
    for warning in done.result.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    for image in done.result.get("images") or []:
        print(where(settings, image["path"]))
        if "quality_score" in image:  # stdout stays one path a line, for scripts
            score = "unknown" if image["quality_score"] is None else f"{image['quality_score']:.2f}"
            flags = ", ".join(image.get("quality_flags") or [])
            print(
                f"{Path(image['path']).name}: quality {score}" + (f" ({flags})" if flags else ""),
                file=sys.stderr,
            )
    return 0


# -- sample story ---------------------------------------------------------------------------------

SAMPLE_LORA = Path("loras/sample/inkwash.safetensors")  # relative to storage


def cmd_sample_story(args) -> int:
    from enchant_worker.cli.common import open_database
    from enchant_worker.domain.jobs import NewJob
    from enchant_worker.handlers.generate_image import JOB_TYPE
    from enchant_worker.queue import JobQueue
    from enchant_worker.sql import q

    settings, db = open_database()
    if args.steps is not None:
        from enchant_worker.handlers.generate_image import validate as validate_generation

        validate_generation({"prompt": "x", "steps": args.steps})
    # 1. The LoRA style: a random one, only for the tiny model (a LoRA must match its base model)
    lora_file = _sample_lora(settings)
    # 2. The rows, in one statement
    queue = JobQueue(db.open())
    with queue.conn.transaction():
        row = one(queue.conn.execute(q("insert_sample_story"), {"lora_file": lora_file}))
    print(
        f"story {row['story_id']}: scenes {', '.join(map(str, row['scene_ids']))}"
        + ("" if lora_file else " (no LoRA style: the default model is not the tiny one)"),
        file=sys.stderr,
    )
    if not args.enqueue:
        for scene_id in row["scene_ids"]:
            print(scene_id)
        return 0
    # 3. One job per scene
    metadata = {"steps": args.steps} if args.steps is not None else {}
    jobs = [
        queue.enqueue(
            NewJob(
                JOB_TYPE,
                {"scene_id": str(scene_id), **metadata},
                entity_type="scene",
                entity_id=scene_id,
                user_id=row["user_id"],
            )
        )
        for scene_id in row["scene_ids"]
    ]
    wait = sys.stdout.isatty() if args.wait is None else args.wait
    if not wait:
        for job_id in jobs:
            print(job_id)
        print("queued one generate_image job per scene; run `enchant-worker worker --burst`", file=sys.stderr)
        return 0
    status = 0
    for job_id in jobs:
        done = follow(queue, job_id, args.timeout)
        if done is None or done.status != "completed":
            why = "still running" if done is None else f"{done.status}: {done.error_message or ''}"
            print(f"error: job {job_id} {why}", file=sys.stderr)
            status = 1
            continue
        for image in done.result.get("images") or []:
            print(where(settings, image["path"]))
    return status


def _sample_lora(settings) -> str | None:
    from enchant_worker.model_catalog import ModelRegistry

    registry = ModelRegistry.load(Path(settings.models_dir), Path(settings.models_config))
    model = registry.get(None)
    if model.builtin != "tiny":
        return None
    path = Path(settings.storage) / SAMPLE_LORA
    if not path.is_file():
        from enchant_worker.generation.tiny_model import build_tiny_pipeline, save_random_lora

        save_random_lora(build_tiny_pipeline(), path, seed=1)
    if (objects := remote(settings)) is not None:  # workers on other hosts load it from there
        objects.put_file(SAMPLE_LORA.as_posix(), path)
    return str(SAMPLE_LORA)
