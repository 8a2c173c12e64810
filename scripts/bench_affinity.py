"""Warm-model affinity: model loads per 100 jobs and images/s, with the lease's preference against without.

    .venv/bin/python scripts/bench_affinity.py                  # 48 jobs, 4 rounds per side
    .venv/bin/python scripts/bench_affinity.py --jobs 96 --rounds 2 --json out.json

A queue interleaving 2 base models (two tiny SD models built here with different seeds) and 6 LoRA sets
(random LoRA files for them, alone and in pairs; the same 12 (model, set) combinations in a fixed
shuffled order) is enqueued at once as generate_image jobs, and an in-process burst Worker (one slot,
as on a GPU) drains it. The worker's resident budget is ONE base model (ENCHANT_MODEL_CACHE_MAX_MODELS=1,
what a GPU has room for with real models): with an LRU holding both tiny models, loads would drop without
affinity too. Compared in the same run, rounds alternating so that drift in machine load hits both:

  without  ENCHANT_AFFINITY_MAX_WAIT_S=0: jobs leased in queue order (the model switches at random)
  with     ENCHANT_AFFINITY_MAX_WAIT_S=600 (longer than a round: no job turns old here)
  bounded  ENCHANT_AFFINITY_MAX_WAIT_S=--bounded-wait (default 5 s): what the bound costs

Each round starts cold (a fresh provider: nothing resident). Model loads are the pipeline cache's
count; images/s is jobs × images per job over enqueue → last completion (the database's clock), the
median of the rounds. On a shared machine other processes' load moves images/s from round to round, so
images per CPU-second of this process (its process time over the drain: the worker, torch, the database
client; the Postgres server not counted) is printed too: it counts the work saved, whatever else runs.
Prints ratios (with / without); targets: ≥ 5× fewer model loads, ≥ 1.5× images/s.

The database: --database-url or ENCHANT_DATABASE_URL, else the embedded Postgres (as bench_generate).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from bench_generate import fresh_database  # noqa: E402  (the same throw-away database set-up)

MODELS = ("tiny-a", "tiny-b")
LORA_FILES = ("ink", "water", "oil", "chalk")
LORA_SETS = (["ink"], ["water"], ["oil"], ["chalk"], ["ink", "water"], ["oil", "chalk"])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=48)
    p.add_argument("--rounds", type=int, default=4, help="rounds per side, alternating")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--bounded-wait", type=float, default=5.0, help="max wait of the 'bounded' side (s)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: steadier on a small shared CPU; 0: torch's default)",
    )
    p.add_argument("--database-url", default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args()


def build_models(folder: Path) -> Path:
    """Two tiny base models and four LoRA files; returns the models config naming them."""
    from diffusers import StableDiffusionPipeline

    from enchant_worker.generation.tiny_model import save_random_lora, save_tiny_model

    for i, name in enumerate(MODELS):
        save_tiny_model(folder / "models" / name, seed=100 + i)
    pipe = StableDiffusionPipeline.from_pretrained(str(folder / "models" / MODELS[0]), local_files_only=True)
    for i, name in enumerate(LORA_FILES):
        save_random_lora(pipe, folder / "loras" / f"{name}.safetensors", seed=i + 1)
    config = folder / "models.toml"
    config.write_text(
        f'default = "{MODELS[0]}"\n'
        + "".join(
            f'\n[models.{m}]\npath = "{m}"\nfamily = "sd15"\n[models.{m}.defaults]\nwidth = 64\nheight = 64\n'
            for m in MODELS
        )
    )
    return config


def job_mix(jobs: int, steps: int) -> list[dict]:
    """The interleaved queue: the 12 (model, LoRA set) combinations, each block in a shuffled order."""
    combos = [(m, s) for m in MODELS for s in LORA_SETS]
    rng = random.Random(7)
    order: list[tuple[str, list[str]]] = []
    while len(order) < jobs:
        block = combos[:]
        rng.shuffle(block)
        order.extend(block)
    return [
        {
            "prompt": f"a lighthouse at dusk, study {i}",
            "provider": "local",
            "model": m,
            "loras": list(s),
            "story_styles": False,
            "steps": steps,
            "seed": 1000 + i,
            "sampler": "Euler",
        }
        for i, (m, s) in enumerate(order[:jobs])
    ]


def one_round(db, settings, metadata: list[dict]) -> dict:
    """Enqueue the mix, drain it with a cold burst worker; loads, throughput and queue order."""
    from enchant_worker.domain.jobs import NewJob
    from enchant_worker.handlers import default_registry
    from enchant_worker.handlers.generate_image import forget_providers, providers_for
    from enchant_worker.queue import JobQueue
    from enchant_worker.worker.runner import Worker

    forget_providers()  # cold: nothing resident
    local = providers_for(settings).get("local")
    worker = Worker(db, settings, default_registry(plugins=False), job_types=["generate_image"], burst=True)
    with db.connection() as conn:
        conn.execute("DELETE FROM images")
        conn.execute("DELETE FROM processing_jobs")
        ids = JobQueue(conn).enqueue_many([NewJob("generate_image", m) for m in metadata])
        cpu = time.process_time()
        thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
        thread.start()
        thread.join()
        cpu = time.process_time() - cpu
        rows = conn.execute(
            "SELECT status, error_message, created_at, started_at, completed_at, result "
            "FROM processing_jobs WHERE id = ANY(%s) ORDER BY started_at",
            (ids,),
        ).fetchall()
    bad = [r for r in rows if r["status"] != "completed"]
    if bad or len(rows) != len(ids):
        raise SystemExit(
            f"{len(bad)} of {len(ids)} jobs not completed: {bad[0]['error_message'] if bad else ''}"
        )
    seconds = (max(r["completed_at"] for r in rows) - min(r["created_at"] for r in rows)).total_seconds()
    images = sum(len(r["result"]["images"]) for r in rows)
    waits = sorted((r["started_at"] - r["created_at"]).total_seconds() for r in rows)
    models_in_order = [r["result"]["model"] for r in rows]
    timings: dict[str, float] = {}
    for r in rows:
        for key, value in (r["result"].get("timings_s") or {}).items():
            timings[key] = timings.get(key, 0.0) + value / len(rows)
    return {
        "model_loads": local.pipelines.loads,
        "model_switches": sum(a != b for a, b in zip(models_in_order, models_in_order[1:], strict=False)),
        "images": images,
        "seconds": round(seconds, 3),
        "images_s": round(images / seconds, 3),
        "images_per_cpu_s": round(images / cpu, 3),
        "max_queue_wait_s": round(waits[-1], 2),
        "mean_job_timings_s": {k: round(v, 3) for k, v in sorted(timings.items())},
    }


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # one notice per LoRA load about the text encoder, not ours
    if args.threads:
        torch.set_num_threads(args.threads)
    from enchant_worker.config import Settings
    from enchant_worker.db.connection import Database

    sides = {"without": 0.0, "with": 600.0, "bounded": args.bounded_wait}
    results: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args) as (url, where):
        folder = Path(tmp)
        config = build_models(folder)
        metadata = job_mix(args.jobs, args.steps)
        db = Database(url)
        base = Settings(
            database_url=url,
            home=folder / "home",
            storage_dir=folder / "storage",
            models_dir=folder / "models",
            models_config=config,
            lora_dirs=[folder / "loras"],
            device="cpu",
            model_cache_max_models=1,
            poll_interval_s=0.2,
        )
        for r in range(args.rounds):
            for side, wait in sides.items() if r % 2 == 0 else reversed(sides.items()):
                settings = base.model_copy(update={"affinity_max_wait_s": wait})
                started = time.perf_counter()
                results[side].append(one_round(db, settings, metadata))
                print(
                    f"round {r + 1} {side:8s} {results[side][-1]} ({time.perf_counter() - started:.1f} s)",
                    flush=True,
                )

    def median(side: str, key: str) -> float:
        return statistics.median(x[key] for x in results[side])

    per100 = {side: round(100 * median(side, "model_loads") / args.jobs, 1) for side in sides}
    ips = {side: round(median(side, "images_s"), 3) for side in sides}
    per_cpu = {side: round(median(side, "images_per_cpu_s"), 3) for side in sides}
    summary = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "steps": args.steps,
        "size": 64,
        "database": where,
        "torch_threads": torch.get_num_threads(),
        "resident_budget": "1 base model (model_cache_max_models=1)",
        "mix": f"{len(MODELS)} base models x {len(LORA_SETS)} LoRA sets, interleaved",
        "model_loads_per_100_jobs": per100,
        "images_s": ips,
        "images_per_cpu_s": per_cpu,
        "rounds_detail": results,
        "fewer_model_loads": round(per100["without"] / max(per100["with"], 1e-9), 1),
        "images_s_ratio": round(ips["with"] / ips["without"], 2),
        "images_per_cpu_s_ratio": round(per_cpu["with"] / per_cpu["without"], 2),
        "bounded": {
            "max_wait_s": args.bounded_wait,
            "fewer_model_loads": round(per100["without"] / max(per100["bounded"], 1e-9), 1),
            "images_s_ratio": round(ips["bounded"] / ips["without"], 2),
        },
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print()
    print(
        f"{args.jobs} generate_image jobs, {summary['mix']}; tiny models on the CPU, 64x64, {args.steps} steps; "
        f"one worker slot; resident budget ONE base model; median of {args.rounds} round(s); database {where}"
    )
    print(f"{'':28s}{'without':>10s}{'with':>10s}{'bounded':>10s}")
    print(f"{'model loads per 100 jobs':28s}" + "".join(f"{per100[s]:>10}" for s in sides))
    print(f"{'images/s':28s}" + "".join(f"{ips[s]:>10}" for s in sides))
    print(f"{'images per CPU-second':28s}" + "".join(f"{per_cpu[s]:>10}" for s in sides))
    print(
        f"with / without: {summary['fewer_model_loads']}x fewer model loads (target >= 5x), "
        f"{summary['images_s_ratio']}x images/s (target >= 1.5x), "
        f"{summary['images_per_cpu_s_ratio']}x images per CPU-second"
    )
    print(
        f"bounded ({args.bounded_wait:g} s) / without: {summary['bounded']['fewer_model_loads']}x fewer model loads, "
        f"{summary['bounded']['images_s_ratio']}x images/s"
    )


if __name__ == "__main__":
    main()
