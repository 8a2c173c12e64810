"""Cross-job batching: N jobs (one image each, their own prompts and seeds) drawn alone, one call per job,
against the same N jobs in one batched call (`generation.generate.generate_batch`, what a worker does
with ENCHANT_GENERATION_BATCH_SIZE=N), on the same resident pipeline, in one run.

    .venv/bin/python scripts/bench_batch.py                    # tiny model on the CPU, N = 1 4 8
    .venv/bin/python scripts/bench_batch.py --threads 1        # steadier on a small shared CPU
    .venv/bin/python scripts/bench_batch.py --sd15 --size 64 --steps 4     # SD 1.5 architecture, CPU, small
    .venv/bin/python scripts/bench_batch.py --sd15 --device cuda --size 512 --steps 25   # the GPU check

Rounds alternate the two sides (drift in machine load hits both alike); each side is warmed first at
every N. Prints images/s alone and batched and their ratio per N, and how far the batched images are
from the same jobs' images alone (largest difference of 255 levels, share of values that differ: none
on the CPU, see generation.batch_invariance; a GPU chooses its kernels by shape). No database: it runs
where no Postgres does (the GPU check).
"""

from __future__ import annotations

import argparse
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from enchant_worker.generation.device import resolve_device  # noqa: E402
from enchant_worker.generation.generate import generate, generate_batch  # noqa: E402
from enchant_worker.generation.model_registry import ModelSpec  # noqa: E402
from enchant_worker.generation.params import GenerationParams, validate_settings  # noqa: E402
from enchant_worker.generation.pipelines import PipelineCache  # noqa: E402
from enchant_worker.generation.tiny_model import build_sd15_random, build_tiny_pipeline  # noqa: E402

PROMPTS = (
    "a lighthouse at night",
    "a fox in the snow",
    "the queen in her castle",
    "a ship in a storm",
    "a market at dawn",
    "a dragon over the hills",
    "a library by candlelight",
    "two knights duelling",
)


def jobs(args, n: int, round_: int) -> list[GenerationParams]:
    """n jobs as different users send them: their own prompts and seeds, the shared settings."""
    return [
        GenerationParams(
            PROMPTS[i % len(PROMPTS)],
            "blurry",
            validate_settings(
                {
                    "seed": 1000 * round_ + i,
                    "steps": args.steps,
                    "width": args.size,
                    "height": args.size,
                    "cfg_scale": 7.0,
                }
            ),
            nan_guard=not args.sd15,  # random weights can give black images; not what is measured here
        )
        for i in range(n)
    ]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, object]:
    sync()
    started = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - started, out


def alone(resident, members):
    return [generate(resident, params) for params in members]


def batched(resident, members):
    return generate_batch(resident, members)


def difference(alone_out, batched_out) -> tuple[int, float]:
    largest, differing, total = 0, 0, 0
    for a, b in zip(alone_out, batched_out, strict=True):
        for x, y in zip(a.images, b.images, strict=True):
            diff = np.abs(np.asarray(x, dtype=np.int16) - np.asarray(y, dtype=np.int16))
            largest, differing, total = (
                max(largest, int(diff.max())),
                differing + int((diff > 0).sum()),
                total + diff.size,
            )
    return largest, differing / total


def bench(resident, args, n: int) -> dict:
    for side in (alone, batched):  # warm each side at this batch shape
        side(resident, jobs(args, n, 0))
    alone_s, batched_s = [], []
    largest, share = 0, 0.0
    for r in range(1, args.rounds + 1):
        members = jobs(args, n, r)
        t_alone, out_alone = timed(lambda m=members: alone(resident, m))
        t_batched, out_batched = timed(lambda m=members: batched(resident, m))
        alone_s.append(t_alone)
        batched_s.append(t_batched)
        d = difference(out_alone, out_batched)
        largest, share = max(largest, d[0]), max(share, d[1])
    a, b = statistics.median(alone_s), statistics.median(batched_s)
    row = {
        "n": n,
        "alone_images_s": round(n / a, 3),
        "batched_images_s": round(n / b, 3),
        "batched_over_alone": round(a / b, 3),
        "rounds": args.rounds,
        "max_pixel_difference": largest,
        "share_of_values_differing": round(share, 6),
    }
    if torch.cuda.is_available():
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sd15", action="store_true", help="real SD 1.5 architecture, random weights")
    parser.add_argument("--size", type=int, default=None, help="pixels (default 64 on the CPU, 512 on a GPU)")
    parser.add_argument("--steps", type=int, default=None, help="default 10 on the CPU, 25 on a GPU")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8], help="jobs per batched call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per N, the sides alternated")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    policy = resolve_device(args.device)
    args.size = args.size or (512 if policy.is_cuda else 64)
    args.steps = args.steps or (25 if policy.is_cuda else 10)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipe = (
            build_sd15_random(device=policy.device, dtype=policy.dtype)
            if args.sd15
            else build_tiny_pipeline()
        )
        resident = PipelineCache(policy, [folder]).adopt(
            ModelSpec("sd15-random" if args.sd15 else "tiny-sd", folder, "sd15"), pipe
        )
        summary = {
            "model": "sd15 architecture, random weights" if args.sd15 else "tiny-sd",
            "device": policy.describe(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "size": args.size,
            "steps": args.steps,
            "batching": [],
        }
        for n in args.batch:
            summary["batching"].append(bench(resident, args, n))
            if args.json:  # rewritten after each N: a run cut short keeps what it measured
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(summary, indent=2))
    for row in summary["batching"]:
        print(
            f"N={row['n']}: batched {row['batched_images_s']} images/s vs alone {row['alone_images_s']} "
            f"= {row['batched_over_alone']}x; images differ by at most {row['max_pixel_difference']}/255 in "
            f"{row['share_of_values_differing']:.4%} of values"
        )


if __name__ == "__main__":
    main()
