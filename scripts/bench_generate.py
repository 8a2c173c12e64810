"""Bare diffusers pipeline vs our generation path, same model and settings, one run; LoRA switch vs load.

    .venv/bin/python scripts/bench_generate.py            # tiny model on the CPU
    .venv/bin/python scripts/bench_generate.py --sd15     # real SD 1.5 architecture, random weights
    .venv/bin/python scripts/bench_generate.py --sd15 --size 512 --steps 25 --batch 1 4 --compile   # GPU

Prints ratios (ours / bare), because absolute times on shared machines are noise. The two paths run
interleaved, so drift in machine load hits both alike. Writes a JSON summary to --json when given.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from enchant_worker.generation.adapters import LoraRequest  # noqa: E402
from enchant_worker.generation.device import resolve_device  # noqa: E402
from enchant_worker.generation.generate import generate  # noqa: E402
from enchant_worker.generation.model_registry import ModelSpec  # noqa: E402
from enchant_worker.generation.params import GenerationParams, validate_settings  # noqa: E402
from enchant_worker.generation.pipelines import PipelineCache  # noqa: E402
from enchant_worker.generation.tiny_model import build_sd15_random, build_tiny_pipeline, save_random_lora  # noqa: E402

PROMPT = "a portrait of the queen in the castle at night, dramatic lighting"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


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


def bench_throughput(resident, args, batch: int) -> dict:
    pipe = resident.pipe
    for _ in range(args.warmup):
        bare_call(pipe, args, batch, 0)
        our_call(resident, args, batch, 0)
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
    }
    if torch.cuda.is_available():
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return result


def bench_lora(resident, args, folder: Path) -> dict:
    """Loading two LoRAs from disk into a pipeline vs switching between two resident sets."""
    files = [
        save_random_lora(resident.pipe, folder / f"style{i}.safetensors", rank=args.rank, seed=i)
        for i in range(4)
    ]
    set_a = [LoraRequest("s0", files[0], 0.8), LoraRequest("s1", files[1], 0.6)]
    set_b = [LoraRequest("s2", files[2], 0.7), LoraRequest("s3", files[3], 0.5)]
    cache = resident.adapters
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sd15", action="store_true", help="real SD 1.5 architecture, random weights")
    parser.add_argument(
        "--size", type=int, default=None, help="pixels (default 64 tiny / 128 sd15 on CPU / 512 on GPU)"
    )
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    policy = resolve_device(args.device, compile=args.compile)
    on_gpu = policy.is_cuda
    args.size = args.size or (64 if not args.sd15 else 512 if on_gpu else 128)
    args.steps = args.steps or (25 if on_gpu else 10)

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
        summary = {
            "model": "sd15 architecture, random weights" if args.sd15 else "tiny-sd",
            "device": policy.describe(),
            "size": args.size,
            "steps": args.steps,
            "build_s": round(build_s, 2),
            "generation": [bench_throughput(resident, args, b) for b in args.batch],
            "lora": bench_lora(resident, args, folder),
        }
    print(json.dumps(summary, indent=2))
    for row in summary["generation"]:
        print(
            f"batch {row['batch']}: ours/bare throughput = {row['throughput_ratio']} ({row['ours_it_s']} vs {row['bare_it_s']} it/s)"
        )
    print(f"LoRA switch / load = {summary['lora']['switch_over_load']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
