"""Bare diffusers pipeline vs the same images through the queue and the worker; LoRA switch vs load.

    .venv/bin/python scripts/bench_generate.py            # tiny model on the CPU
    .venv/bin/python scripts/bench_generate.py --sd15     # real SD 1.5 architecture, random weights, 128 px
    .venv/bin/python scripts/bench_generate.py --threads 1   # steadier figures on a small shared CPU
    .venv/bin/python scripts/bench_generate.py --sd15 --size 512 --steps 25 --compile   # GPU, end to end
    .venv/bin/python scripts/bench_generate.py --sd15 --device cuda --batch 1 4 --compile   # GPU, in process

(a) One run, one model, one set of parameters: the bare pipeline called in a loop (`--jobs` calls of
`--count` images, fixed seeds) vs the same images made end to end: `--jobs` generate_image jobs
enqueued in a fresh database, run by an in-process Worker (burst), each writing its PNGs and rows.
Ours is timed from the enqueue to the last job completed (the database's clock). Both sides are warmed
first (the worker runs one job, which loads its resident pipeline; the bare pipeline one call), so no
model load is timed. The bare side calls the worker's own resident pipeline object, so weights, device
and attention settings are the same; the sampler is the same (Euler), and the images are compared
pixel for pixel. Rounds alternate the two sides, so drift in machine load hits both alike.

(a') With --batch, in process and with no database (where no Postgres runs, e.g. the GPU check): the
bare pipeline vs `generation.generate()` on the same resident pipeline, interleaved, per batch size.

(b) Switching between two resident LoRA sets vs loading them from disk.

The database: `--database-url` or ENCHANT_DATABASE_URL (any database on the server; default
postgresql://postgres@127.0.0.1:5432/postgres), else the embedded Postgres; a database
bench_generate_<pid> is created, migrated and dropped at the end.

SD 1.5 (`--sd15`): the random-weights pipeline is built in memory once and made resident in the
worker's local provider under a model `sd15-random` declared in a temporary models config
(Settings(models_config=...)); nothing is written to disk or loaded from it.

Prints ratios (ours / bare), because absolute times on shared machines are noise. Writes a JSON
summary to --json when given.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from enchant_worker.generation.adapters import LoraRequest  # noqa: E402
from enchant_worker.generation.device import resolve_device  # noqa: E402
from enchant_worker.generation.generate import generate  # noqa: E402
from enchant_worker.generation.model_registry import ModelSpec  # noqa: E402
from enchant_worker.generation.params import GenerationParams, validate_settings  # noqa: E402
from enchant_worker.generation.pipelines import PipelineCache  # noqa: E402
from enchant_worker.generation.prompts import build_raw_prompt  # noqa: E402
from enchant_worker.generation.tiny_model import build_sd15_random, build_tiny_pipeline, save_random_lora  # noqa: E402

# The database, the queue and the worker (psycopg, pydantic) are imported where part (a) end to end
# needs them: the in-process mode (--batch) runs where neither is installed (the GPU check).

PROMPT = "a portrait of the queen in the castle at night, dramatic lighting"
NEGATIVE = "blurry"
CFG = 7.0
SAMPLER = "Euler"  # the default scheduler of both the tiny model and build_sd15_random
SEED0 = 1000
DB_NAME = "bench_generate"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SD15_NAME = "sd15-random"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- (a') in-process: bare pipeline vs generation.generate() (--batch; no database needed) -----------


def bare_call(pipe, args, batch: int, seed: int) -> None:
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)]
    with torch.inference_mode():
        pipe(
            prompt=[PROMPT] * batch,
            negative_prompt=["blurry"] * batch,
            width=args.size,
            height=args.size,
            num_inference_steps=args.steps,
            guidance_scale=7.0,
            generator=generators,
            output_type="pil",
        )
    sync()


def our_call(resident, args, batch: int, seed: int) -> None:
    settings = validate_settings(
        {
            "seed": seed,
            "count": batch,
            "steps": args.steps,
            "width": args.size,
            "height": args.size,
            "cfg_scale": 7.0,
        }
    )
    generate(
        resident,
        GenerationParams(PROMPT, "blurry", settings, nan_guard=not args.sd15),
        on_progress=lambda d, t: None,
        is_cancelled=lambda: False,
    )
    sync()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> int | None:
    return round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None


def bench_throughput(resident, args, batch: int) -> dict:
    pipe = resident.pipe
    reset_peak()  # per batch size: the resident weights plus this batch's activations
    warmup_s = []  # the first calls at a new batch size compile the UNet (--compile)
    for _ in range(args.warmup):
        warmup_s.append(timed(lambda: bare_call(pipe, args, batch, 0)))
        warmup_s.append(timed(lambda: our_call(resident, args, batch, 0)))
    bare, ours = [], []
    for i in range(args.repeats):  # interleaved
        bare.append(timed(lambda i=i: bare_call(pipe, args, batch, i)))
        ours.append(timed(lambda i=i: our_call(resident, args, batch, i)))
    b, o = statistics.median(bare), statistics.median(ours)
    result = {
        "batch": batch,
        "bare_s": round(b, 4),
        "ours_s": round(o, 4),
        "bare_it_s": round(args.steps / b, 2),
        "ours_it_s": round(args.steps / o, 2),
        "bare_images_s": round(batch / b, 3),
        "ours_images_s": round(batch / o, 3),
        "throughput_ratio": round(b / o, 3),
        "repeats": args.repeats,
        "warmup_s": [round(x, 2) for x in warmup_s],
    }
    if torch.cuda.is_available():
        result["peak_gpu_mib"] = peak_mib()
    print(json.dumps(result), flush=True)  # as it comes: a step cut short by its timeout keeps these
    return result


def in_thread(fn):
    """fn() in a fresh thread, as the worker runs a job in its slot thread. Torch called from the
    process's main thread ran 2-4x slower and erratic on a loaded CPU here (OpenMP's spinning team of
    the main thread), which would flatter the worker; both sides therefore run off the main thread."""
    out: list = []
    errors: list = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller)
            errors.append(exc)

    thread = threading.Thread(target=target, name="bench-bare")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


# -- (a) bare pipeline vs the queue and the worker, end to end ------------------------------------


@dataclass
class Bench:
    """What part (a) needs: the worker's settings, the database, and the resident pipeline."""

    args: argparse.Namespace
    settings: Any  # enchant_worker.config.Settings
    db: Any  # enchant_worker.db.connection.Database
    model: str
    prompt: str = ""
    negative_prompt: str = ""
    pipe: object = None  # the worker's resident pipeline; the bare side calls this very object


def seeds_of(args, job: int) -> list[int]:
    return [SEED0 + job * args.count + i for i in range(args.count)]


def job_metadata(bench: Bench, seed: int) -> dict:
    a = bench.args
    return {
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "provider": "local",
        "model": bench.model,
        "seed": seed,
        "count": a.count,
        "steps": a.steps,
        "width": a.size,
        "height": a.size,
        "cfg": CFG,
        "sampler": SAMPLER,
    }


def run_bare(bench: Bench, seeds: list[int]) -> list:
    """One call of the bare pipeline: one image per seed, PIL images out."""
    a = bench.args
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    with torch.inference_mode():
        out = bench.pipe(
            prompt=[bench.prompt] * len(seeds),
            negative_prompt=[bench.negative_prompt] * len(seeds),
            width=a.size,
            height=a.size,
            num_inference_steps=a.steps,
            guidance_scale=CFG,
            generator=generators,
            output_type="pil",
        )
    sync()
    return out.images


def bare_round(bench: Bench) -> tuple[float, list]:
    """N calls of the bare pipeline, `count` images each, the jobs' seeds; PIL images out."""
    images = []
    started = time.perf_counter()
    for job in range(bench.args.jobs):
        images.extend(run_bare(bench, seeds_of(bench.args, job)))
    return time.perf_counter() - started, images


def run_worker(bench: Bench) -> None:
    """An in-process Worker (burst: drains the queue, then returns), as `enchant-worker work --burst`."""
    from enchant_worker.handlers import default_registry
    from enchant_worker.worker.runner import Worker

    registry = default_registry(plugins=False)
    worker = Worker(bench.db, bench.settings, registry, job_types=["generate_image"], burst=True)
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    thread.start()
    thread.join()


def worker_round(bench: Bench, seeds: list[int]) -> dict:
    """Enqueue one generate_image job per seed, run a burst worker until the queue is empty."""
    from enchant_worker.domain.jobs import NewJob
    from enchant_worker.queue import JobQueue

    with bench.db.connection() as conn:
        started = time.perf_counter()
        ids = JobQueue(conn).enqueue_many([NewJob("generate_image", job_metadata(bench, s)) for s in seeds])
        run_worker(bench)
        wall = time.perf_counter() - started
        rows = conn.execute(
            "SELECT id, status, error_message, created_at, started_at, completed_at, result "
            "FROM processing_jobs WHERE id = ANY(%s)",
            (ids,),
        ).fetchall()
    bad = [r for r in rows if r["status"] != "completed"]
    if bad or len(rows) != len(ids):
        raise SystemExit(
            f"worker: {len(bad)} of {len(ids)} jobs not completed: {bad[0]['error_message'] if bad else ''}"
        )
    enqueued = min(r["created_at"] for r in rows)
    last = max(r["completed_at"] for r in rows)
    by_id = {r["id"]: r for r in rows}
    ordered = [by_id[i] for i in ids]
    e2e = (last - enqueued).total_seconds()
    leased = sum((r["completed_at"] - r["started_at"]).total_seconds() for r in ordered)
    return {
        "e2e_s": e2e,  # the database's clock: enqueue → last job completed
        "wall_s": wall,  # this process's clock, also counting the worker's exit
        "first_lease_s": (min(r["started_at"] for r in rows) - enqueued).total_seconds(),
        "leased_s": leased,  # Σ lease → completed, per job
        "results": [r["result"] for r in ordered],
    }


def stage_breakdown(out: dict) -> dict:
    """Where the worker's time went in one round (seconds, summed over its jobs): the worker's start
    (enqueue → first lease), the handler's stages (its timings_s), the rest of each lease (the worker's
    bookkeeping around a job, and the handler's images rows and their commit, written after its run_s
    is taken) and of the round (between jobs: leasing the next)."""
    stages: dict[str, float] = {}
    for result in out["results"]:
        for key, value in (result.get("timings_s") or {}).items():
            if key not in ("queue_wait_s", "model_load_s"):
                stages[key] = stages.get(key, 0.0) + float(value)
    run = stages.pop("run_s", 0.0)
    generate = sum(stages.get(k, 0.0) for k in ("adapters_s", "denoise_s", "decode_s"))
    return {
        "worker_start_to_first_lease": out["first_lease_s"],
        **stages,
        "handler_other": run - generate - stages.get("save_s", 0.0) - stages.get("context_s", 0.0),
        "lease_to_complete_outside_handler": out["leased_s"] - run,
        "between_jobs": out["e2e_s"] - out["first_lease_s"] - out["leased_s"],
        "e2e": out["e2e_s"],
    }


def same_images(bench: Bench, bare_images: list, results: list[dict]) -> dict:
    """Are the worker's PNGs the bare pipeline's images, pixel for pixel?"""
    import numpy as np
    from PIL import Image

    ours = []
    for result in results:
        for image in result["images"]:
            with Image.open(Path(bench.settings.storage) / image["path"]) as im:
                ours.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    theirs = [np.asarray(im.convert("RGB"), dtype=np.int16) for im in bare_images]
    if len(ours) != len(theirs):
        return {"count_ours": len(ours), "count_bare": len(theirs), "identical": False}
    diff = max(int(np.abs(x - y).max()) for x, y in zip(ours, theirs, strict=True))
    return {"images": len(ours), "identical": diff == 0, "max_abs_pixel_diff": diff}


def bench_end_to_end(bench: Bench) -> dict:
    a = bench.args
    images = a.jobs * a.count
    # Warm both sides: the first job loads the worker's resident pipeline (or adopts it), the bare
    # pipeline runs once; neither model load nor first-call set-up is timed.
    warm = worker_round(bench, [SEED0 + 10_000])
    bench.pipe = resident_pipe(bench)
    bare_warm_s = in_thread(
        lambda: timed(lambda: run_bare(bench, [SEED0 + 20_000 + i for i in range(bench.args.count)]))
    )

    seeds = [seeds_of(a, j)[0] for j in range(a.jobs)]
    bare_s, ours_s, ours_wall_s, breakdowns, check = [], [], [], [], None
    for r in range(a.rounds):  # alternated, so drift in machine load hits both alike
        order = ("bare", "ours") if r % 2 == 0 else ("ours", "bare")
        for side in order:
            if side == "bare":
                seconds, bare_images = in_thread(lambda: bare_round(bench))
                bare_s.append(seconds)
            else:
                out = worker_round(bench, seeds)
                ours_s.append(out["e2e_s"])
                ours_wall_s.append(out["wall_s"])
                breakdowns.append(stage_breakdown(out))
                last_results = out["results"]
        if check is None:
            check = same_images(bench, bare_images, last_results)
    b, o, w = statistics.median(bare_s), statistics.median(ours_s), statistics.median(ours_wall_s)
    # Per image, the median over rounds of each part of the worker's time.
    per_image_ms = {
        k: round(statistics.median(d[k] for d in breakdowns) / images * 1000, 1) for k in breakdowns[0]
    }
    pipeline_parts = ("adapters_s", "denoise_s", "decode_s")
    outside_ms = per_image_ms["e2e"] - sum(per_image_ms.get(k, 0.0) for k in pipeline_parts)
    return {
        "jobs": a.jobs,
        "count_per_job": a.count,
        "images": images,
        "rounds": a.rounds,
        "warmup": {
            "worker_first_job_s": round(warm["wall_s"], 3),
            "model_load_s": round(float(warm["results"][0]["timings_s"].get("model_load_s", 0.0)), 3),
            "bare_first_call_s": round(bare_warm_s, 3),
        },
        "bare_s": [round(x, 3) for x in bare_s],
        "ours_e2e_s": [round(x, 3) for x in ours_s],
        "ours_wall_s": [round(x, 3) for x in ours_wall_s],
        "bare_images_s": round(images / b, 3),
        "ours_images_s": round(images / o, 3),
        "ours_images_s_with_worker_exit": round(images / w, 3),
        "ratio": round(b / o, 3),  # of the medians
        "ratio_best_rounds": round(min(bare_s) / min(ours_s), 3),  # noise only ever adds time
        "ours_outside_pipeline_ms_per_image": round(outside_ms, 1),
        # What the ratio would be if the pipeline's work cost the same on both sides (it is the same
        # object, called with the same inputs) and only our time outside it differed: robust to noise.
        "ratio_from_overhead": round(b / images * 1000 / (b / images * 1000 + outside_ms), 3),
        "ratio_per_round": [round(x / y, 3) for x, y in zip(bare_s, ours_s, strict=True)],
        "ratio_with_worker_exit": round(b / w, 3),
        "worker_exit_ms": round(
            statistics.median(x - y for x, y in zip(ours_wall_s, ours_s, strict=True)) * 1000
        ),
        "bare_ms_per_image": round(b / images * 1000, 1),
        "ours_ms_per_image": per_image_ms,
        "same_images": check,
    }


def local_provider(bench: Bench):
    from enchant_worker.handlers.generate_image import providers_for

    return providers_for(bench.settings).get("local")


def resident_pipe(bench: Bench):
    provider = local_provider(bench)
    resident, _ = provider.pipelines.get(provider.registry.get(bench.model))
    return resident.pipe


# -- the database ----------------------------------------------------------------------------------


def admin_url(args) -> tuple[str, str]:
    """A reachable server (its `postgres` database) and where it came from."""
    import psycopg

    url = args.database_url or os.environ.get("ENCHANT_DATABASE_URL") or DEFAULT_ADMIN_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
        return psycopg.conninfo.make_conninfo(url, dbname="postgres"), "server"
    except psycopg.OperationalError:
        from enchant_worker.db import embedded

        home = Path(os.environ.get("ENCHANT_TEST_HOME", REPO / ".enchant-test"))
        url = embedded.start(home / "pgdata")
        return psycopg.conninfo.make_conninfo(url, dbname="postgres"), "embedded"


@contextmanager
def fresh_database(args) -> Iterator[tuple[str, str]]:
    import psycopg

    from enchant_worker.db.connection import connect
    from enchant_worker.db.migrate import migrate

    admin, where = admin_url(args)
    name = f"{DB_NAME}_{os.getpid()}"  # two runs at once do not drop each other's database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    try:
        with connect(url) as conn:
            migrate(conn, REPO / "migrations")
        yield url, where
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_lora(resident, args, folder: Path) -> dict:
    """Loading two LoRAs from disk into a pipeline vs switching between two resident sets."""
    files = [
        save_random_lora(resident.pipe, folder / f"style{i}.safetensors", rank=args.rank, seed=i)
        for i in range(4)
    ]
    set_a = [LoraRequest("s0", files[0], 0.8), LoraRequest("s1", files[1], 0.6)]
    set_b = [LoraRequest("s2", files[2], 0.7), LoraRequest("s3", files[3], 0.5)]
    cache = resident.adapters
    reset_peak()
    loads = [cache.activate(set_a).load_s, cache.activate(set_b).load_s]
    switches = []
    for _ in range(args.repeats * 2):
        for chosen in (set_a, set_b):
            sync()
            switches.append(timed(lambda chosen=chosen: (cache.activate(chosen), sync())))
    cache.activate([])
    load, switch = statistics.median(loads), statistics.median(switches)
    return {
        "lora_rank": args.rank,
        "lora_file_mib": round(files[0].stat().st_size / 2**20, 2),
        "load_two_s": round(load, 4),
        "switch_s": round(switch, 5),
        "switch_over_load": round(switch / load, 4),
        "peak_gpu_mib": peak_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sd15", action="store_true", help="real SD 1.5 architecture, random weights")
    parser.add_argument(
        "--size", type=int, default=None, help="pixels (default 64 tiny / 128 sd15 on CPU / 512 on GPU)"
    )
    parser.add_argument("--steps", type=int, default=None, help="default 10 on CPU, 25 on GPU")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per round (default 4 tiny, 2 sd15)")
    parser.add_argument(
        "--count", type=int, default=None, help="images per job, one batched call (default 2 tiny, 1 sd15)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=None,
        help="in-process mode instead of (a): the bare pipeline vs generation.generate() at these batch "
        "sizes, no database (the GPU check, where no Postgres runs)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timed rounds of each side, alternated (default 12 tiny, 3 sd15)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="LoRA switches per set (b); timed calls (--batch)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side (--batch)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    parser.add_argument(
        "--compile-mode",
        default=None,
        help="with --compile: a torch.compile mode for the UNet instead of the worker's own "
        "(apply_policy's max-autotune-no-cudagraphs), e.g. 'default', which compiles in a fraction of "
        "the time; the bare side and ours still call the same compiled UNet (--batch)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads, both sides (default: torch's, one per core). On a small "
        "shared CPU, 1 keeps OpenMP's spinning team from stalling on other work: far steadier",
    )
    parser.add_argument("--database-url", default=None, help="any database on the server to use")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.compile_mode and not (args.compile and args.batch):
        parser.error("--compile-mode goes with --compile and --batch")
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    # With --compile-mode the policy compiles nothing; run_in_process compiles the UNet in that mode.
    policy = resolve_device(args.device, compile=args.compile and not args.compile_mode)
    on_gpu = policy.is_cuda
    args.size = args.size or (64 if not args.sd15 else 512 if on_gpu else 128)
    args.steps = args.steps or (25 if on_gpu else 10)
    args.jobs = args.jobs or (2 if args.sd15 else 4)
    args.count = args.count or (1 if args.sd15 else 2)
    args.rounds = args.rounds or (3 if args.sd15 else 12)

    if args.batch:
        summary = run_in_process(args, policy)
    else:
        summary = run_end_to_end(args, policy)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str))


def write_json(args, summary: dict) -> None:
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str))


def run_in_process(args, policy) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        if args.sd15:
            pipe = build_sd15_random(device=policy.device, dtype=policy.dtype)
        else:
            pipe = build_tiny_pipeline()
        build_s = time.perf_counter() - started
        cache = PipelineCache(policy, [folder])
        resident = cache.adopt(ModelSpec("sd15-random" if args.sd15 else "tiny-sd", folder, "sd15"), pipe)
        compile_mode = None
        if args.compile:
            compile_mode = args.compile_mode or "max-autotune-no-cudagraphs (apply_policy)"
            if args.compile_mode:
                resident.pipe.unet.compile(mode=args.compile_mode)
        summary = {
            "model": "sd15 architecture, random weights" if args.sd15 else "tiny-sd",
            "device": {**policy.describe(), "compile": bool(args.compile)},
            "compile_mode": compile_mode,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "size": args.size,
            "steps": args.steps,
            "build_s": round(build_s, 2),
            "generation": [],
        }
        for b in args.batch:  # the JSON is rewritten after each part: a step cut short keeps the rest
            summary["generation"].append(bench_throughput(resident, args, b))
            write_json(args, summary)
        summary["lora"] = bench_lora(resident, args, folder)
        write_json(args, summary)
    print(json.dumps(summary, indent=2))
    for row in summary["generation"]:
        print(
            f"batch {row['batch']}: ours/bare throughput = {row['throughput_ratio']} ({row['ours_it_s']} vs {row['bare_it_s']} it/s)"
        )
    print(f"LoRA switch / load = {summary['lora']['switch_over_load']}")
    return summary


def run_end_to_end(args, policy) -> dict:
    from enchant_worker.config import Settings
    from enchant_worker.db.connection import Database

    built = build_raw_prompt(PROMPT, None, [], NEGATIVE)  # what the handler will send the pipeline
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args) as (url, where):
        folder = Path(tmp)
        models_config, models_dir = REPO / "configs" / "models.toml", REPO / "models"
        if args.sd15:
            models_dir = folder / "models"
            models_config = folder / "models.toml"
            models_config.write_text(
                f'default = "{SD15_NAME}"\n\n[models.{SD15_NAME}]\npath = "{SD15_NAME}"\nfamily = "sd15"\n'
                'description = "SD 1.5 architecture, random weights, in memory (bench)"\n'
            )
        settings = Settings(
            database_url=url,
            home=folder / "home",
            storage_dir=folder / "storage",
            models_dir=models_dir,
            models_config=models_config,
            device=args.device,
            compile=args.compile,
            lora_dirs=[folder],
        )
        bench = Bench(
            args,
            settings,
            Database(url),
            SD15_NAME if args.sd15 else "tiny-sd",
            built.prompt,
            built.negative_prompt,
        )
        build_s = 0.0
        if args.sd15:
            started = time.perf_counter()
            pipe = build_sd15_random(device=policy.device, dtype=policy.dtype)
            build_s = time.perf_counter() - started
            provider = local_provider(bench)
            provider.pipelines.adopt(provider.registry.get(SD15_NAME), pipe)
        end_to_end = bench_end_to_end(bench)
        resident, _ = local_provider(bench).pipelines.get(local_provider(bench).registry.get(bench.model))
        summary = {
            "model": "sd15 architecture, random weights" if args.sd15 else "tiny-sd",
            "device": policy.describe(),
            "database": where,
            "size": args.size,
            "steps": args.steps,
            "sampler": SAMPLER,
            "torch_threads": torch.get_num_threads(),
            "build_s": round(build_s, 2),
            "end_to_end": end_to_end,
            "lora": bench_lora(resident, args, folder),
        }
    print(json.dumps(summary, indent=2, default=str))
    e = summary["end_to_end"]
    print()
    print(
        f"(a) {summary['model']}, {args.size}x{args.size}, {args.steps} steps, {SAMPLER}, "
        f"{e['jobs']} jobs x {e['count_per_job']} images, {e['rounds']} rounds, device {policy.device}, "
        f"{torch.get_num_threads()} torch threads, "
        f"database {where}; both sides warmed first (model load not timed)"
    )
    print(f"    bare pipeline loop      {e['bare_images_s']:>8} images/s  (median round; in a fresh thread)")
    print(
        f"    queue + worker (e2e)    {e['ours_images_s']:>8} images/s  (median round; enqueue -> last job completed)"
    )
    print(
        f"    ratio ours/bare         {e['ratio']:>8}   target >= 0.95; per round {e['ratio_per_round']}; "
        f"best rounds {e['ratio_best_rounds']}"
    )
    print(
        f"    burst worker's exit     {e['worker_exit_ms']:>8} ms after the last job (not counted; "
        f"counted: ratio {e['ratio_with_worker_exit']})"
    )
    print(
        f"    ours outside pipeline   {e['ours_outside_pipeline_ms_per_image']:>8} ms/image of "
        f"{e['bare_ms_per_image']} ms/image bare -> ratio from our overhead alone {e['ratio_from_overhead']}"
    )
    print("    ours ms/image (median)  " + ", ".join(f"{k} {v}" for k, v in e["ours_ms_per_image"].items()))
    print(f"    same images             {e['same_images']}")
    print(f"(b) LoRA switch / load = {summary['lora']['switch_over_load']}  (target < 0.10)")
    return summary


if __name__ == "__main__":
    main()
