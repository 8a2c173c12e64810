"""Write a trained LoRA as `<name>.safetensors` (diffusers keys) and `<name>.kohya.safetensors` (kohya /
AUTOMATIC1111 / ComfyUI keys), both with the training facts in the safetensors header. Both load in
diffusers and in ComfyUI (tests/unit/training/test_comfyui_loads_lora.py runs ComfyUI's loader on them).

diffusers keys:  diffusers' attention-processor names, `unet.<block>.attn1.processor.to_q_lora.down.weight`
                 / `..._lora.up.weight` (`to_out_lora` for `to_out.0`) and
                 `text_encoder.<module>.lora_linear_layer.down.weight` / `.up.weight`: the one diffusers
                 key style ComfyUI also maps for SD 1.x/2.x (peft's `lora_A`/`lora_B` names it does not).
                 These keys carry no alpha, so alpha / rank is folded into the up weights.
kohya keys:      `lora_unet_<module_with_underscores>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
                 `lora_te_<module>...` for the text encoder; scale = alpha / rank as in kohya's sd-scripts.

`content_hash` is the SHA-256 of the file's tensor data (everything after the header), the same value
AUTOMATIC1111 and kohya call `sshs_model_hash`; it can be checked with `data_hash(path)`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save, save_file

HEADER_LENGTH_BYTES = 8


def data_hash_of_bytes(blob: bytes) -> str:
    header_len = int.from_bytes(blob[:HEADER_LENGTH_BYTES], "little")
    return hashlib.sha256(blob[HEADER_LENGTH_BYTES + header_len :]).hexdigest()


def data_hash(path: Path) -> str:
    """SHA-256 of a safetensors file's tensor data (independent of its metadata)."""
    return data_hash_of_bytes(Path(path).read_bytes())


def to_kohya(component: str, lora: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft keys of one component (`unet` or `text_encoder`) → kohya keys with an `.alpha` per module."""
    prefix = {"unet": "lora_unet_", "text_encoder": "lora_te_"}[component]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in lora.items():
        module, _, kind = key.rpartition(".lora_")  # "<module>", "A.weight" | "B.weight"
        name = prefix + module.replace(".", "_")
        out[f"{name}.lora_down.weight" if kind == "A.weight" else f"{name}.lora_up.weight"] = tensor
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=tensor.dtype)
    return out


def to_diffusers(component: str, lora: Mapping[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """peft keys of one component → diffusers' processor-style keys, with `scale` folded into the up weights."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in lora.items():
        module, _, kind = key.rpartition(".lora_")
        down = kind == "A.weight"
        if component == "unet":
            block, _, projection = module.rpartition(".")
            if projection == "0":  # to_out.0 → to_out
                block, _, projection = block.rpartition(".")
            name = f"unet.{block}.processor.{projection}_lora.{'down' if down else 'up'}.weight"
        else:
            name = f"{component}.{module}.lora_linear_layer.{'down' if down else 'up'}.weight"
        out[name] = tensor if down else tensor * scale
    return out


def _write_atomic(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> str:
    """Write `path` through a temporary file; return its data hash (stored in the header as well)."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    digest = data_hash_of_bytes(save(tensors))
    metadata = {**metadata, "content_hash": digest, "sshs_model_hash": digest}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return digest


def export_lora(
    output_dir: Path,
    stem: str,
    loras: Mapping[str, Mapping[str, torch.Tensor]],
    facts: Mapping[str, Any],
    dtype: torch.dtype = torch.float16,
) -> dict[str, Any]:
    """Write both files. `loras` maps `unet` / `text_encoder` to peft state dicts (`<module>.lora_A.weight`).

    `facts` are the training facts for the header: trigger_words, base_model, rank, alpha, steps,
    resolution, image_count, learning_rate (and anything else worth keeping). Returns paths and hashes.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    loras = {c: {k: v.detach().to("cpu", dtype) for k, v in sd.items()} for c, sd in loras.items() if sd}
    common = {k: v if isinstance(v, str) else json.dumps(v) for k, v in facts.items()}
    common["trained_with"] = "enchant-worker"

    alpha = float(facts["alpha"])

    # 1. diffusers format
    diffusers_sd: dict[str, torch.Tensor] = {}
    for component, sd in loras.items():
        diffusers_sd.update(to_diffusers(component, sd, alpha / int(facts["rank"])))
    diffusers_path = output_dir / f"{stem}.safetensors"
    diffusers_hash = _write_atomic(
        diffusers_sd, {"format": "pt", "lora_format": "diffusers", **common}, diffusers_path
    )

    # 2. kohya / AUTOMATIC1111 format
    kohya_sd: dict[str, torch.Tensor] = {}
    for component, sd in loras.items():
        kohya_sd.update(to_kohya(component, sd, alpha))
    kohya_path = output_dir / f"{stem}.kohya.safetensors"
    kohya_hash = _write_atomic(
        kohya_sd, {"format": "pt", "lora_format": "kohya", **common, **_kohya_facts(stem, facts)}, kohya_path
    )
    return {
        "diffusers_path": str(diffusers_path),
        "kohya_path": str(kohya_path),
        "diffusers_hash": diffusers_hash,
        "kohya_hash": kohya_hash,
    }


def _kohya_facts(stem: str, facts: Mapping[str, Any]) -> dict[str, str]:
    """The header keys kohya's sd-scripts write, which AUTOMATIC1111 and ComfyUI show."""
    resolution = int(facts["resolution"])
    triggers = list(facts.get("trigger_words") or [])
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(facts["rank"]),
        "ss_network_alpha": str(float(facts["alpha"])),
        "ss_output_name": stem,
        "ss_base_model_version": "sd_v2" if facts.get("enchant.family") == "sd2" else "sd_v1",
        "ss_sd_model_name": str(facts["base_model"]),
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_num_train_images": str(facts["image_count"]),
        "ss_learning_rate": str(facts["learning_rate"]),
        "ss_max_train_steps": str(facts["steps"]),
        "ss_tag_frequency": json.dumps({"dataset": {t: int(facts["image_count"]) for t in triggers}}),
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.title": stem,
        "modelspec.trigger_phrase": ", ".join(triggers),
    }
