"""/sdapi/v1/txt2img end to end vs the bare diffusers pipeline, same run, same images.

    .venv/bin/python scripts/bench_a1111.py                  # tiny model on the CPU, 64 px, 10 steps
    .venv/bin/python scripts/bench_a1111.py --rounds 20 --steps 20 --threads 1

One process: a fresh database (ENCHANT_DATABASE_URL's server, else the embedded Postgres), the API on
127.0.0.1 (uvicorn) and a worker in a thread. "ours" is an HTTP POST of an AUTOMATIC1111 txt2img
request with a user key, timed until its answer is in (intake, the queue, the worker, the PNG and its
rows, reading it back, base64, JSON, HTTP); "bare" is the worker's own resident pipeline object called
directly with the same prompt, seed, steps, CFG and size. Each round runs both sides back to back (their
order alternating), after one warm-up each. The ratio bare/ours (≥ 0.95 is the target) is the median of
the rounds' own ratios: a round's two sides run under the same load from the rest of the machine, which
on a shared machine swings a side's time by ±10% from one second to the next, so the paired figure is
the steadier one (the ratio of the two sides' medians is printed too). Also the overhead per request
in ms (median of ours − bare per round), where our time goes (the job's own timings), and whether the
pixels are the same. The worker runs on the default settings (a 5 s heartbeat). The request
wakes on its job's end through the API's LISTEN (api.job_waits); --no-listen measures the polling
fallback instead.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

PROMPT, NEGATIVE, SEED, CFG = "a lighthouse on a cliff at dusk, oil painting", "blurry", 1234, 7.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--no-listen",
        action="store_true",
        help="the API polls the job row instead of LISTENing for its end (as behind a pooler "
        "without ENCHANT_DIRECT_DATABASE_URL)",
    )
    args = parser.parse_args()

    import numpy as np
    import requests
    import torch
    from bench_generate import fresh_database
    from PIL import Image

    from enchant_worker.api import create_app
    from enchant_worker.api.auth import create_key
    from enchant_worker.api.store import Store
    from enchant_worker.config import Settings
    from enchant_worker.db.connection import Database
    from enchant_worker.generation.tiny_model import save_tiny_model
    from enchant_worker.handlers import default_registry
    from enchant_worker.handlers.generate_image import providers_for
    from tests.support.http_server import ServerThread
    from tests.support.workers import WorkerThreads

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args) as (url, where):
        models = Path(tmp) / "models"
        save_tiny_model(models / "tiny-sd")
        settings = Settings(
            database_url=url,
            home=Path(tmp) / "home",
            models_dir=models,
            device="cpu",
            poll_interval_s=0.05,
        )
        db = Database(url)
        with db.connection() as conn:
            store = Store(conn)
            key = create_key(store, name="bench", role="admin", user_id=None)[0]
        workers = WorkerThreads(db, settings)
        workers.start(types=["generate_image"], poll_interval_s=0.05)
        app = create_app(
            settings,
            database_url=url,
            session_url=None if args.no_listen else url,
            job_types=default_registry(plugins=False),
        )
        body = {
            "prompt": PROMPT,
            "negative_prompt": NEGATIVE,
            "seed": SEED,
            "steps": args.steps,
            "cfg_scale": CFG,
            "width": args.size,
            "height": args.size,
            "sampler_name": "Euler",
            "batch_size": 1,
            "n_iter": 1,
        }
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        try:
            with ServerThread(app) as server:
                endpoint = f"{server.url}/sdapi/v1/txt2img"

                job_ids = []

                def ours():
                    started = time.perf_counter()
                    r = session.post(endpoint, json=body)
                    r.raise_for_status()
                    job_ids.append(json.loads(r.json()["info"])["job_id"])
                    image = Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0])))
                    return time.perf_counter() - started, image

                ours()  # warm-up: the worker loads its resident pipeline
                provider = providers_for(settings).get("local")
                resident, _ = provider.pipelines.get(provider.registry.get("tiny-sd"))
                pipe = resident.pipe

                def bare():
                    started = time.perf_counter()
                    with torch.inference_mode():
                        out = pipe(
                            prompt=[PROMPT],
                            negative_prompt=[NEGATIVE],
                            width=args.size,
                            height=args.size,
                            num_inference_steps=args.steps,
                            guidance_scale=CFG,
                            generator=[torch.Generator("cpu").manual_seed(SEED)],
                            output_type="pil",
                        )
                    return time.perf_counter() - started, out.images[0]

                bare()
                bare_s, ours_s, same = [], [], None
                for i in range(args.rounds):
                    sides = [bare, ours] if i % 2 == 0 else [ours, bare]
                    for side in sides:
                        seconds, image = side()
                        (bare_s if side is bare else ours_s).append(seconds)
                        if i == 0:
                            if side is bare:
                                bare_image = np.asarray(image.convert("RGB"))
                            else:
                                our_image = np.asarray(image.convert("RGB"))
                    if i == 0:
                        same = bool((bare_image == our_image).all())
                with db.connection() as conn:
                    rows = conn.execute(
                        "SELECT result->'timings_s' AS t, EXTRACT(EPOCH FROM completed_at - "
                        "created_at)::FLOAT8 AS e2e FROM processing_jobs WHERE id = ANY(%s::uuid[])",
                        (job_ids[1:],),
                    ).fetchall()
        finally:
            workers.stop_all(15)
    overhead = statistics.median(o - b for o, b in zip(ours_s, bare_s, strict=True))
    summary = {
        "database": where,
        "listen": not args.no_listen,
        "rounds": args.rounds,
        "steps": args.steps,
        "size": args.size,
        "bare_median_s": statistics.median(bare_s),
        "ours_median_s": statistics.median(ours_s),
        "ratio_bare_over_ours": statistics.median(b / o for b, o in zip(bare_s, ours_s, strict=True)),
        "ratio_of_medians": statistics.median(bare_s) / statistics.median(ours_s),
        "overhead_ms_per_request": overhead * 1000,
        "same_pixels": same,
        # where our time goes (medians over the timed jobs): waiting for a worker, the handler's run
        # (generation, PNG, rows), and the job's life from insert to completion (the database's clock)
        "job_queue_wait_ms": 1000 * statistics.median(r["t"]["queue_wait_s"] for r in rows),
        "job_run_ms": 1000 * statistics.median(r["t"]["run_s"] for r in rows),
        "job_created_to_completed_ms": 1000 * statistics.median(r["e2e"] for r in rows),
        "job_timings_ms": {
            k: round(1000 * statistics.median(r["t"][k] for r in rows if k in r["t"]), 2)
            for k in rows[0]["t"]
        },
    }
    print("| side | median s per image |\n|---|---:|")
    print(f"| bare diffusers pipeline | {summary['bare_median_s']:.4f} |")
    print(f"| /sdapi/v1/txt2img end to end | {summary['ours_median_s']:.4f} |")
    print(
        f"ratio bare/ours {summary['ratio_bare_over_ours']:.3f} (median of {args.rounds} rounds' ratios; "
        f"target ≥ 0.95), ratio of the medians {summary['ratio_of_medians']:.3f}; overhead "
        f"{summary['overhead_ms_per_request']:.1f} ms per request; same pixels: {same}"
    )
    print(
        f"job: queue wait {summary['job_queue_wait_ms']:.1f} ms, run {summary['job_run_ms']:.1f} ms, "
        f"created → completed {summary['job_created_to_completed_ms']:.1f} ms (medians)"
    )
    print("job timings, ms (medians):", json.dumps(summary["job_timings_ms"]))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
