"""A tiny randomly initialised CLIP model (text and vision towers), built locally: prompt alignment
(`clip_alignment`) runs in tests and demos without a download. Its similarities mean nothing.

Registered in configs/models.toml as `kind = "clip"` with `builtin = "tiny"`, it is built on first use.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from enchant_worker.generation.tokenizer_files import vocab_size, write_tokenizer_files

TINY_CLIP_SEED = 0
TINY_CLIP_MARKER = "enchant_tiny_clip.json"  # written last: a folder without it is an interrupted build
TINY_CLIP_IMAGE_PX = 32
TINY_CLIP_TEXT: dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    max_position_embeddings=77,
)
TINY_CLIP_VISION: dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    image_size=TINY_CLIP_IMAGE_PX,
    patch_size=8,
)
TINY_CLIP_PROJECTION = 16


def build_tiny_clip(seed: int = TINY_CLIP_SEED):
    """A tiny CLIPModel; the same seed gives the same weights."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    eos_id = vocab_size() - 1
    text = CLIPTextConfig(
        vocab_size=max(1000, vocab_size()),
        bos_token_id=eos_id - 1,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        projection_dim=TINY_CLIP_PROJECTION,
        **TINY_CLIP_TEXT,
    )
    vision = CLIPVisionConfig(projection_dim=TINY_CLIP_PROJECTION, **TINY_CLIP_VISION)
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=TINY_CLIP_PROJECTION
    )
    torch.manual_seed(seed)
    return CLIPModel(config).eval()


def save_tiny_clip(folder: Path, seed: int = TINY_CLIP_SEED) -> Path:
    """Build the tiny CLIP with its tokenizer and image processor files into `folder` (built aside and
    renamed into place, so that a reader never sees half a folder)."""
    from transformers import CLIPImageProcessor

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build_tiny_clip(seed).save_pretrained(str(staging), safe_serialization=True)
        write_tokenizer_files(staging)
        CLIPImageProcessor(
            size={"shortest_edge": TINY_CLIP_IMAGE_PX},
            crop_size={"height": TINY_CLIP_IMAGE_PX, "width": TINY_CLIP_IMAGE_PX},
        ).save_pretrained(str(staging))
        (staging / TINY_CLIP_MARKER).write_text(json.dumps({"seed": seed}), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            if not tiny_clip_ready(folder):  # another builder won the race with a complete folder
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def tiny_clip_ready(folder: Path) -> bool:
    return (Path(folder) / TINY_CLIP_MARKER).is_file()
