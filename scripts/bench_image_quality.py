"""Image-quality overhead per image against the generation time, and CLIP scoring apart.

    .venv/bin/python scripts/bench_image_quality.py                 # tiny model on the CPU
    .venv/bin/python scripts/bench_image_quality.py --images 40 --threads 1

In one process, with the worker's own local provider and resident tiny pipeline (its default 20
steps, 64 px): each round generates one image, saves it as the handler does, then times what the
handler adds per image: `handlers.image_quality.analyse_stored` (the stored file checked against the
SHA-256 of the bytes written, the pixels measured from memory), and apart `ClipScorer.similarity` with
the tiny random CLIP (built locally); also `analyze_file` (decoding the PNG again, the path of a LoRA
preview). Rounds interleave them, so machine drift hits them alike. Also the same at 512 and 1024 px
(SD 1.5 and SDXL sizes), as a ratio to the tiny generation time: real models take far longer to
generate those sizes, so these ratios are an upper bound. The target: quality < 3 % of generation.

Prints medians and ratios (absolute times on a shared machine are noise); --json writes a summary.
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
from PIL import Image  # noqa: E402

from enchant_worker.content_address import content_hash  # noqa: E402
from enchant_worker.generation.clip_alignment import ClipScorer  # noqa: E402
from enchant_worker.generation.image_quality import analyze_file  # noqa: E402
from enchant_worker.generation.tiny_clip import save_tiny_clip  # noqa: E402
from enchant_worker.generation.tiny_model import save_tiny_model  # noqa: E402
from enchant_worker.handlers.image_quality import analyse_stored  # noqa: E402
from enchant_worker.model_catalog import ClipSpec  # noqa: E402
from enchant_worker.providers.base import GenerationRequest  # noqa: E402
from enchant_worker.providers.local import LocalDiffusersProvider  # noqa: E402

PROMPT = "a knight with a silver sword standing in a dark forest at night, cinematic lighting"


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20, help="rounds: one image each")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's, 20)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # 1. The tiny pipeline (resident in the provider) and the tiny CLIP, built locally
        save_tiny_model(root / "tiny-sd")
        provider = LocalDiffusersProvider(models_dir=root, models_config=None, device=args.device)
        clip_load_s, scorer = timed(
            ClipScorer, ClipSpec("tiny-clip", save_tiny_clip(root / "tiny-clip")), args.device
        )
        parameters = {"count": 1, **({"steps": args.steps} if args.steps else {})}
        provider.generate(GenerationRequest(PROMPT, parameters={**parameters, "seed": 0}))  # load + warm up
        scorer.similarity(PROMPT, Image.new("RGB", (64, 64)))

        # 2. Rounds: generate, save as the handler does, its quality step, CLIP apart, a decode apart
        def handler_quality(path: Path, image, sha256: str) -> None:
            analyse_stored(path, PROMPT, None, "no clip", {}, image=image, sha256=sha256)

        gen, quality, decoded, clip = [], [], [], []
        for i in range(args.images):
            t, result = timed(
                provider.generate, GenerationRequest(PROMPT, parameters={**parameters, "seed": i + 1})
            )
            gen.append(t)
            path, image = root / f"image-{i}.png", result.images[0]
            image.save(path)
            quality.append(timed(handler_quality, path, image, content_hash(path.read_bytes()))[0])
            decoded.append(timed(analyze_file, path)[0])
            clip.append(timed(scorer.similarity, PROMPT, image)[0])

        # 3. Larger images (random pixels: the worst case for the PNG size the check reads)
        rng = np.random.default_rng(0)
        larger = {}
        for side in (512, 1024):
            path = root / f"large-{side}.png"
            image = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
            image.save(path)
            sha256 = content_hash(path.read_bytes())
            larger[side] = statistics.median(timed(handler_quality, path, image, sha256)[0] for _ in range(5))

    g = statistics.median(gen)
    summary = {
        "images": args.images,
        "generation_s_median": round(g, 5),
        "quality_s_median": round(statistics.median(quality), 6),
        "quality_decoding_file_s_median": round(statistics.median(decoded), 6),
        "clip_s_median": round(statistics.median(clip), 6),
        "clip_load_s": round(clip_load_s, 3),
        "quality_over_generation": round(statistics.median(quality) / g, 5),
        "quality_over_generation_total": round(sum(quality) / sum(gen), 5),
        "decoding_file_over_generation": round(statistics.median(decoded) / g, 5),
        "clip_over_generation": round(statistics.median(clip) / g, 5),
        "quality_512px_over_tiny_generation": round(larger[512] / g, 5),
        "quality_1024px_over_tiny_generation": round(larger[1024] / g, 5),
    }
    print(f"tiny model, {args.images} images, {torch.get_num_threads()} threads; per image (median):")
    print(f"  generation                 {g * 1000:9.1f} ms   1.000")
    print(
        f"  quality (the handler's)    {summary['quality_s_median'] * 1000:9.2f} ms   "
        f"{summary['quality_over_generation']:.4f}  (total ratio {summary['quality_over_generation_total']:.4f};"
        f" target < 0.03)"
    )
    print(
        f"  quality decoding the file  {summary['quality_decoding_file_s_median'] * 1000:9.2f} ms   "
        f"{summary['decoding_file_over_generation']:.4f}  (a LoRA preview's path)"
    )
    print(
        f"  CLIP alignment (tiny CLIP) {summary['clip_s_median'] * 1000:9.2f} ms   "
        f"{summary['clip_over_generation']:.4f}  (measured apart; load once {clip_load_s:.2f} s)"
    )
    print(
        f"  quality of a 512 px image  {larger[512] * 1000:9.2f} ms   {summary['quality_512px_over_tiny_generation']:.4f}"
        "  (against the tiny generation: an upper bound)"
    )
    print(
        f"  quality of a 1024 px image {larger[1024] * 1000:9.2f} ms   "
        f"{summary['quality_1024px_over_tiny_generation']:.4f}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
