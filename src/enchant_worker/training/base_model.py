"""The base model a LoRA is trained on: where its folder is, and its parts loaded for training."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enchant_worker.errors import InvalidJob

TRAINABLE_PIPELINES = {"StableDiffusionPipeline"}  # SD 1.x / 2.x layouts
REQUIRED_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class BaseModel:
    """The parts of a Stable Diffusion pipeline a trainer needs. Training adds adapters to them in place."""

    name: str
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any  # a DDPMScheduler with the model's training schedule and prediction type

    @property
    def prediction_type(self) -> str:
        return self.noise_scheduler.config.prediction_type

    @property
    def pixel_step(self) -> int:
        """Image sides must be multiples of this: the VAE's downsampling times the UNet's."""
        vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(self.unet.config.block_out_channels) - 1)
        return vae_factor * unet_factor

    @classmethod
    def from_pipeline(cls, pipe: Any, name: str = "in-memory") -> BaseModel:
        from diffusers import DDPMScheduler

        return cls(
            name=name,
            unet=pipe.unet,
            vae=pipe.vae,
            text_encoder=pipe.text_encoder,
            tokenizer=pipe.tokenizer,
            noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        )


def resolve_base_model(name: str, models_dir: Path, known: Mapping[str, Path] | None = None) -> Path:
    """The diffusers folder for `name`: a configured name, a folder under `models_dir`, or a path."""
    candidates = []
    if known and name in known:
        candidates.append(Path(known[name]))
    candidates += [Path(models_dir) / name, Path(name).expanduser()]
    for folder in candidates:
        if (folder / "model_index.json").is_file():
            _check_layout(name, folder)
            return folder
    available = sorted(
        set(known or ()) | {p.name for p in Path(models_dir).glob("*/model_index.json") for p in [p.parent]}
    )
    raise InvalidJob(
        f"base_model: unknown base model {name!r}; available: {', '.join(available) or 'none'}. "
        f"Place a diffusers-format Stable Diffusion folder under {models_dir} or give its path."
    )


def _check_layout(name: str, folder: Path) -> None:
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    if index.get("_class_name") not in TRAINABLE_PIPELINES:
        raise InvalidJob(
            f"base_model: {name!r} is a {index.get('_class_name')}; LoRA training supports "
            f"{', '.join(sorted(TRAINABLE_PIPELINES))} (SD 1.x / 2.x) base models"
        )
    missing = [part for part in REQUIRED_PARTS if not (folder / part).is_dir()]
    if missing:
        raise InvalidJob(
            f"base_model: {folder} lacks {', '.join(missing)}; it is not a complete diffusers folder"
        )


def load_base_model(folder: Path, name: str | None = None) -> BaseModel:
    """Load the parts from a local diffusers folder (never from the network)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from enchant_worker import logs

    logs.adopt_library_logs()  # their notices in our format, the known ones rewritten
    where = str(folder)
    opts: dict[str, Any] = {"local_files_only": True}
    return BaseModel(
        name=name or Path(where).name,
        unet=UNet2DConditionModel.from_pretrained(where, subfolder="unet", **opts),
        vae=AutoencoderKL.from_pretrained(where, subfolder="vae", **opts),
        text_encoder=CLIPTextModel.from_pretrained(where, subfolder="text_encoder", **opts),
        tokenizer=CLIPTokenizer.from_pretrained(where, subfolder="tokenizer", **opts),
        noise_scheduler=DDPMScheduler.from_pretrained(where, subfolder="scheduler", **opts),
    )
