"""Prompt alignment: the cosine similarity between a prompt and an image under a CLIP model (its text
and vision towers with their projections), and CLIPScore (100 × max(similarity, 0), as torchmetrics).

The model is found by `model_catalog.clip_for` (a `kind = "clip"` entry of configs/models.toml, or a
clip/ folder in the base model's folder) and stays resident per process. The image is prepared as
CLIP's processor does (shortest side resized bicubic, centre crop, normalised) with PIL and numpy,
from the folder's preprocessor_config.json. Nothing is downloaded.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from enchant_worker.model_catalog import ClipSpec

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP_PX = 224


class ClipScorer:
    """One CLIP model, loaded once, scoring (prompt, image) pairs."""

    def __init__(self, spec: ClipSpec, device: str = "cpu"):
        from transformers import CLIPModel, CLIPTokenizer

        # 1. A tiny builtin model is built on first use; any other must be on disk
        if spec.builtin == "tiny":
            from enchant_worker.generation.tiny_clip import save_tiny_clip, tiny_clip_ready

            if not tiny_clip_ready(spec.path):
                save_tiny_clip(spec.path)
        # 2. Load the towers, the tokenizer and the image preparation settings
        self.name = spec.name
        self.device = torch.device(device)
        # transformers types .to() as a wrapper mypy reads wrong
        self.model = CLIPModel.from_pretrained(str(spec.path), local_files_only=True).to(self.device).eval()  # type: ignore[arg-type]
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        self.tokenizer = CLIPTokenizer.from_pretrained(
            str(spec.path), local_files_only=True, model_max_length=self.max_tokens
        )
        self.size_px, self.crop_px, self.mean, self.std = _preprocessing(spec.path, self.model)

    def similarity(self, prompt: str, image: Any) -> dict[str, Any]:
        """The alignment of `prompt` and a PIL image (prompts past the text tower's length are cut, and
        the result says so)."""
        tokens = self.tokenizer(
            [prompt], truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt"
        )
        truncated = len(self.tokenizer.tokenize(prompt)) + 2 > self.max_tokens  # + start and end tokens
        pixels = torch.from_numpy(self._prepare(image)).to(self.device)
        with torch.inference_mode():
            text = _features(
                self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
            )
            vision = _features(self.model.get_image_features(pixel_values=pixels))
            cosine = float(torch.nn.functional.cosine_similarity(text.float(), vision.float()).item())
        return {
            "status": "ok",
            "model": self.name,
            "similarity": round(cosine, 4),
            "clip_score": round(100.0 * max(cosine, 0.0), 2),
            "prompt_truncated": truncated,
        }

    def _prepare(self, image: Any) -> np.ndarray:
        from PIL import Image

        rgb = image.convert("RGB")
        scale = self.size_px / min(rgb.size)
        rgb = rgb.resize(
            (max(self.crop_px, round(rgb.width * scale)), max(self.crop_px, round(rgb.height * scale))),
            Image.Resampling.BICUBIC,
        )
        left, top = (rgb.width - self.crop_px) // 2, (rgb.height - self.crop_px) // 2
        rgb = rgb.crop((left, top, left + self.crop_px, top + self.crop_px))
        array = (np.asarray(rgb, dtype=np.float32) / 255.0 - self.mean) / self.std
        return array.transpose(2, 0, 1)[None].astype(np.float32)


def _features(output: Any) -> torch.Tensor:
    """Projected features: a tensor (transformers 4) or the pooled output of a model output (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _preprocessing(folder: Path, model) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(resize shortest side, crop side, mean, std) from preprocessor_config.json, else CLIP's own."""
    native = int(getattr(model.config.vision_config, "image_size", DEFAULT_CLIP_PX))
    config: dict[str, Any] = {}
    path = Path(folder) / "preprocessor_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
    size = config.get("size", native)
    size = size.get("shortest_edge", native) if isinstance(size, dict) else size
    crop = config.get("crop_size", native)
    crop = crop.get("height", native) if isinstance(crop, dict) else crop
    mean = np.array(config.get("image_mean", OPENAI_CLIP_MEAN), dtype=np.float32)
    std = np.array(config.get("image_std", OPENAI_CLIP_STD), dtype=np.float32)
    return int(size), int(crop), mean, std


# -- resident scorers ------------------------------------------------------------------------------

_scorers: dict[tuple[str, str], ClipScorer] = {}
_lock = threading.Lock()


def scorer_for(spec: ClipSpec, device: str = "cpu") -> ClipScorer:
    """The process-wide scorer of this model on this device, loaded on first use."""
    key = (str(spec.path), device)
    with _lock:
        if key not in _scorers:
            _scorers[key] = ClipScorer(spec, device)
        return _scorers[key]


def forget_scorers() -> None:
    with _lock:
        _scorers.clear()
