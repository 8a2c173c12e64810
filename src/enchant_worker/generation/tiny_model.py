"""Pipelines with random weights, built locally: a tiny SD 1.5-shaped one for tests and the embedded
default, and the real SD 1.5 / SDXL architectures for speed measurements (compute does not depend on
the weights' values). Nothing here downloads anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from enchant_worker.generation.tokenizer_files import (
    vocab_size,
    write_tokenizer_files,
)
from enchant_worker.model_catalog import TINY_RESOLUTION_PX  # native size: 32x32 latents

TINY_MODEL_DIR = Path("models/tiny-sd")
TINY_SEED = 0
TINY_MARKER = "enchant_tiny_model.json"  # written last: a folder without it is an interrupted build

# Configs of the tiny pipeline (after diffusers' get_dummy_components, sized for seconds on a CPU).
TINY_UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=1,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=32,
)
TINY_VAE = dict(
    block_out_channels=[32, 64],
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=32,
    sample_size=TINY_RESOLUTION_PX,
)
TINY_TEXT = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    max_position_embeddings=77,
    layer_norm_eps=1e-05,
)

# The real SD 1.5 architecture (runwayml's configs; the defaults of diffusers' classes fill the rest).
SD15_UNET = dict(
    sample_size=64,
    cross_attention_dim=768,
    attention_head_dim=8,
    block_out_channels=(320, 640, 1280, 1280),
)
SD15_VAE = dict(
    block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    latent_channels=4,
    layers_per_block=2,
    sample_size=512,
)
CLIP_L_TEXT = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_attention_heads=12,
    num_hidden_layers=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
)


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def _text_config(sizes: dict[str, Any]):
    from transformers import CLIPTextConfig

    eos_id = vocab_size() - 1
    return CLIPTextConfig(
        vocab_size=max(1000, vocab_size()),
        bos_token_id=eos_id - 1,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        **sizes,
    )


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    # SD 1.5's training schedule; Euler is a good default sampler at 20-30 steps.
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
    )


def build_tiny_pipeline(seed: int = TINY_SEED, tokenizer_dir: Path | None = None):
    """A tiny randomly initialised StableDiffusionPipeline; the same seed gives the same weights."""
    import tempfile

    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**TINY_VAE)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(TINY_TEXT))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _tokenizer(tokenizer_dir or Path(tmp))
    # The ignores in this file: diffusers' and transformers' models are torch modules, but their own
    # annotations hide .to()/.eval() from mypy.
    return StableDiffusionPipeline(
        unet=unet.eval(),  # type: ignore[attr-defined]
        vae=vae.eval(),  # type: ignore[attr-defined]
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_model(folder: Path = TINY_MODEL_DIR, seed: int = TINY_SEED) -> Path:
    """Build the tiny pipeline and save it as a diffusers folder (safetensors weights).

    Built in a temporary sibling folder and renamed into place, so that a process loading the model
    (or a second builder) never sees a half-written folder.
    """
    import shutil
    import tempfile

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        pipe = build_tiny_pipeline(seed)
        pipe.save_pretrained(str(staging), safe_serialization=True)
        (staging / TINY_MARKER).write_text(json.dumps({"seed": seed, "family": "sd15"}), encoding="utf-8")
        if folder.exists():
            (folder / TINY_MARKER).unlink(missing_ok=True)  # readers see "not ready" from here on
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            if not tiny_model_ready(folder):  # another builder won the race with a complete folder: fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def tiny_model_ready(folder: Path = TINY_MODEL_DIR) -> bool:
    return (Path(folder) / TINY_MARKER).is_file()


def ensure_tiny_model(folder: Path = TINY_MODEL_DIR) -> Path:
    """The tiny model's folder, built first when missing or left half-built."""
    if not tiny_model_ready(folder):
        save_tiny_model(folder)
    return Path(folder)


def build_sd15_random(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """A StableDiffusionPipeline with the real SD 1.5 architecture and random weights, in memory.

    Modules are created directly on `device` (no CPU round trip on a GPU machine).
    """
    import tempfile

    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**SD15_UNET).to(dtype)  # type: ignore[attr-defined]
        vae = AutoencoderKL(**SD15_VAE).to(dtype)  # type: ignore[attr-defined]
        text_encoder = CLIPTextModel(_text_config(CLIP_L_TEXT)).to(dtype)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _tokenizer(Path(tmp))
    return StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def lora_target_modules(unet) -> list[str]:
    """Names of the UNet's attention projections that a LoRA adapts (the usual kohya/diffusers set)."""
    suffixes = ("to_q", "to_k", "to_v", "to_out.0")
    return [name for name, _ in unet.named_modules() if name.endswith(suffixes) and ".attn" in name]


def random_lora_state_dict(pipe, rank: int = 4, seed: int = 0, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """A LoRA for `pipe`'s UNet with random (non-zero) A and B, in diffusers' peft key format.

    Used to make test and benchmark LoRA files; `scale` makes the effect larger or smaller.
    """
    generator = torch.Generator().manual_seed(seed)
    modules = dict(pipe.unet.named_modules())
    state: dict[str, torch.Tensor] = {}
    for name in lora_target_modules(pipe.unet):
        layer = modules[name]
        a = torch.randn(rank, layer.in_features, generator=generator) / layer.in_features**0.5
        b = torch.randn(layer.out_features, rank, generator=generator) * scale / rank**0.5
        state[f"unet.{name}.lora_A.weight"] = a.contiguous()
        state[f"unet.{name}.lora_B.weight"] = b.contiguous()
    return state


def save_random_lora(
    pipe, path: Path, family: str = "sd15", rank: int = 4, seed: int = 0, scale: float = 1.0
) -> Path:
    """Write a random LoRA for `pipe` as a .safetensors file carrying its model family."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = random_lora_state_dict(pipe, rank=rank, seed=seed, scale=scale)
    save_file(
        state, str(path), metadata={"format": "pt", "enchant.family": family, "enchant.rank": str(rank)}
    )
    return path
