"""Steps per second of the project's LoRA trainer against a minimal reference loop, in one run.

The reference is the recipe of diffusers' `train_text_to_image_lora.py`: peft LoRA on the UNet attention
projections, AdamW, MSE on epsilon, the VAE and text encoder run at every step (no caching), the loss
read back every step. Both train the same model (same architecture, same random weights), images,
rank, batch size, resolution and precision; the first `--warmup` steps of each are not timed.

    python scripts/bench_train.py                  # tiny model on the CPU
    python scripts/bench_train.py --sd15           # SD 1.5 architecture, random weights (GPU: 512px, bf16)
    python scripts/bench_train.py --sd15 --resolution 128 --steps 6 --warmup 2   # SD 1.5 on a CPU

Prints one JSON line per run and the ratio (ours / reference, steps per second; above 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from enchant_worker.generation.tiny_model import build_sd15_random, build_tiny_pipeline  # noqa: E402
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec  # noqa: E402
from enchant_worker.training.base_model import BaseModel  # noqa: E402
from enchant_worker.training.dataset import prepare_dataset  # noqa: E402
from enchant_worker.training.trainer import (  # noqa: E402
    UNET_TARGETS,
    TrainingHooks,
    make_accelerator,
    tokenize,
    train_lora,
)

IMAGE_COUNT = 8


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sd15", action="store_true", help="real SD 1.5 architecture with random weights")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--resolution", type=int, help="default 64 (tiny) / 512 (sd15)")
    p.add_argument("--steps", type=int, help="timed steps + warmup; default 40 (tiny) / 60 (sd15)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "fp16", "bf16"])
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (CPU runs only)")
    p.add_argument(
        "--rounds", type=int, help="alternating runs of each loop, best kept; default 3 (tiny) / 1"
    )
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    return p.parse_args()


def make_pipeline(args: argparse.Namespace):
    if args.sd15:
        return build_sd15_random(device=args.device, dtype=torch.float32, seed=0)
    return build_tiny_pipeline(seed=0)


def write_images(folder: Path, resolution: int) -> Path:
    """Square images of exactly `resolution`: one bucket, so both loops see the same tensors."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(IMAGE_COUNT):
        base = torch.rand(3, 8, 8, generator=gen)
        pixels = torch.nn.functional.interpolate(base[None], size=(resolution, resolution), mode="bicubic")[0]
        data = (pixels.clamp(0, 1).permute(1, 2, 0) * 255).to(torch.uint8).numpy()
        Image.fromarray(data).save(folder / f"{i:02d}.png")
    return folder


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        import gc

        gc.collect()  # the other loop's models, if a reference cycle still holds them
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def _figures(name: str, stamps: list[float], warmup: int, total_s: float, device: str) -> dict:
    """Median seconds per step after warmup (robust to a busy shared machine), and the mean."""
    timed = stamps[warmup:]
    deltas = sorted(b - a for a, b in zip(timed, timed[1:], strict=False))
    s_per_step = deltas[len(deltas) // 2]
    return {
        "loop": name,
        "s_per_step": round(s_per_step, 4),
        "mean_s_per_step": round((timed[-1] - timed[0]) / len(deltas), 4),
        "steps_per_s": round(1 / s_per_step, 3),
        "timed_steps": len(deltas),
        "total_s_with_setup": round(total_s, 2),
        "peak_gpu_gib": _peak_gib(device),
    }


def run_ours(args, spec: LoRATrainingSpec, dataset, work: Path) -> dict:
    stamps: list[float] = []
    base = BaseModel.from_pipeline(make_pipeline(args), name="bench")
    _reset_peak(args.device)
    started = time.perf_counter()
    hooks = TrainingHooks(on_progress=lambda *_: stamps.append(time.perf_counter()))
    result = train_lora(spec, dataset, base, work / "ours-work", work / "ours-out", hooks, device=args.device)
    total = time.perf_counter() - started
    figures = _figures("enchant trainer", stamps, args.warmup, total, args.device)
    figures["cache_s"] = round(result.timings["cache_s"], 3)
    return figures


def run_reference(args, spec: LoRATrainingSpec, dataset, work: Path) -> dict:
    """The diffusers example's loop, kept minimal (no logging, validation or checkpoints)."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    from enchant_worker.training.trainer import load_pixels

    pipe = make_pipeline(args)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    _reset_peak(args.device)
    started = time.perf_counter()
    accelerator, weight_dtype = make_accelerator(spec.mixed_precision, args.device)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.to(accelerator.device, dtype=weight_dtype)
    if spec.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    torch.manual_seed(spec.seed)
    unet.add_adapter(
        LoraConfig(
            r=spec.rank, lora_alpha=spec.rank, init_lora_weights="gaussian", target_modules=UNET_TARGETS
        )
    )
    cast_training_params(unet, dtype=torch.float32)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=1e-2)
    lr_scheduler = get_scheduler(
        "constant", optimizer, num_warmup_steps=0, num_training_steps=spec.max_train_steps
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    unet.train()

    # what the example's DataLoader hands over: pixel tensors and token ids (here preloaded, which favours it)
    bucket = (spec.resolution, spec.resolution)
    pixels = torch.stack([load_pixels(dataset.path(im), bucket) for im in dataset.images]).to(
        accelerator.device
    )
    input_ids = tokenize(tokenizer, [im.caption for im in dataset.images]).to(accelerator.device)

    stamps: list[float] = []
    gen = torch.Generator().manual_seed(spec.seed)
    for _ in range(spec.max_train_steps):
        idx = torch.randint(0, len(pixels), (spec.batch_size,), generator=gen).to(accelerator.device)
        latents = vae.encode(pixels[idx].to(weight_dtype)).latent_dist.sample()
        latents = latents * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (len(idx),), device=latents.device
        )
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        encoder_hidden_states = text_encoder(input_ids[idx], return_dict=False)[0]
        pred = unet(noisy, timesteps, encoder_hidden_states, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float(), reduction="mean")
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(params, spec.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        loss.item()  # the example gathers and logs the loss every step
        stamps.append(time.perf_counter())
    return _figures("reference loop", stamps, args.warmup, time.perf_counter() - started, args.device)


def main() -> None:
    args = parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    resolution = args.resolution or (512 if args.sd15 else 64)
    steps = args.steps or (60 if args.sd15 else 40)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = LoRATrainingSpec(
            name="bench",
            training_images=[str(write_images(work / "images", resolution))],
            base_model="sd15-random" if args.sd15 else "tiny-random",
            trigger_words=["benchstyle"],
            resolution=resolution,
            rank=args.rank,
            batch_size=args.batch_size,
            max_train_steps=steps,
            learning_rate=1e-4,
            mixed_precision=args.mixed_precision,
            gradient_checkpointing=args.gradient_checkpointing,
            checkpoint_every=10_000,
        )
        dataset = prepare_dataset(spec, work / "data", min_images=1)
        setup = {
            "model": "sd15-architecture-random" if args.sd15 else "tiny-sd",
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "resolution": resolution,
            "rank": args.rank,
            "batch_size": args.batch_size,
            "mixed_precision": spec.mixed_precision,
            "steps": steps,
            "warmup": args.warmup,
        }
        print(json.dumps({"setup": setup}), flush=True)
        references, ourses = [], []
        for round_ in range(args.rounds or (1 if args.sd15 else 3)):
            references.append(run_reference(args, spec, dataset, work))
            print(json.dumps({"round": round_, **references[-1]}), flush=True)
            ourses.append(run_ours(args, spec, dataset, work / f"round{round_}"))
            print(json.dumps({"round": round_, **ourses[-1]}), flush=True)
        reference = min(references, key=lambda r: r["s_per_step"])
        ours = min(ourses, key=lambda r: r["s_per_step"])
    ratio = ours["steps_per_s"] / reference["steps_per_s"]
    summary = {"ratio_steps_per_s_ours_over_reference": round(ratio, 3), **setup}
    print(json.dumps(summary), flush=True)
    print(
        f"ours {ours['s_per_step']:.4f} s/step, reference {reference['s_per_step']:.4f} s/step, ratio {ratio:.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "runs": [reference, ours], **summary}, indent=2))


if __name__ == "__main__":
    main()
