"""Train a few steps on the tiny model; both files load back into a diffusers pipeline and agree."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from enchant_worker.training.dataset import prepare_dataset
from enchant_worker.training.export import data_hash
from enchant_worker.training.trainer import train_lora

KOHYA_KEY = r"^lora_unet_(down|mid|up)_blocks?_\w+_attn[12]_to_(q|k|v|out_0)\.(lora_down\.weight|lora_up\.weight|alpha)$"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, make_spec, write_images):
    tmp = tmp_path_factory.mktemp("trained")
    spec = make_spec(write_images(tmp / "upload"), learning_rate=1e-2, max_train_steps=4)
    dataset = prepare_dataset(spec, tmp / "data")
    return spec, train_lora(spec, dataset, tiny_model, tmp / "work", tmp / "out")


def _image(pipe, lora=None):
    if lora is not None:
        pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    out = pipe(
        "inkwash, a castle",
        num_inference_steps=2,
        height=64,
        width=64,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    )
    return out.images[0]


@pytest.fixture(scope="module")
def pipeline_factory(tiny_model):
    from diffusers import StableDiffusionPipeline

    def load():
        pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model), local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return load


def test_diffusers_file_loads_back_and_changes_the_image(trained, pipeline_factory):
    _, result = trained
    assert result.steps == 4 and result.resumed_from_step == 0 and np.isfinite(result.final_loss)
    plain = _image(pipeline_factory())
    styled = _image(pipeline_factory(), result.lora_path)
    assert np.abs(plain - styled).max() > 1e-3


def test_kohya_file_follows_kohya_naming_and_gives_the_same_image(trained, pipeline_factory):
    spec, result = trained
    with safe_open(str(result.kohya_path), "pt") as f:
        keys = list(f.keys())
        alphas = {k: f.get_tensor(k).item() for k in keys if k.endswith(".alpha")}
    assert keys and all(__import__("re").match(KOHYA_KEY, k) for k in keys), keys[:5]
    assert set(alphas.values()) == {spec.lora_alpha} == {8.0}
    assert len(keys) == 3 * len(alphas)
    from_diffusers = _image(pipeline_factory(), result.lora_path)
    from_kohya = _image(pipeline_factory(), result.kohya_path)
    np.testing.assert_allclose(from_kohya, from_diffusers, atol=1e-4)  # alpha (8 ≠ rank 4) survived both ways


def test_headers_carry_the_training_facts_and_a_checkable_hash(trained):
    spec, result = trained
    for path in (result.lora_path, result.kohya_path):
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        assert json.loads(meta["trigger_words"]) == ["inkwash"]
        assert meta["base_model"] == "tiny-sd"
        assert (meta["rank"], meta["alpha"], meta["steps"], meta["resolution"]) == ("4", "8.0", "4", "64")
        assert (meta["image_count"], meta["learning_rate"]) == ("5", "0.01")
        assert meta["content_hash"] == data_hash(path)
    assert result.content_hash == data_hash(result.lora_path)
    with safe_open(str(result.kohya_path), "pt") as f:
        meta = f.metadata()
    assert (meta["ss_network_dim"], meta["ss_network_alpha"], meta["modelspec.trigger_phrase"]) == (
        "4",
        "8.0",
        "inkwash",
    )
    assert result.lora_path.name == "ink-wash.safetensors"
    assert result.flagged_images and result.image_count == 5


def test_text_encoder_lora_is_exported_with_lora_te_keys(
    tmp_path, tiny_model, images, make_spec, pipeline_factory
):
    spec = make_spec(images, train_text_encoder=True, max_train_steps=2, learning_rate=1e-2)
    result = train_lora(
        spec, prepare_dataset(spec, tmp_path / "data"), tiny_model, tmp_path / "work", tmp_path / "out"
    )
    with safe_open(str(result.kohya_path), "pt") as f:
        te_keys = [k for k in f.keys() if k.startswith("lora_te_")]
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight" in te_keys
    with safe_open(str(result.lora_path), "pt") as f:
        assert (
            "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight"
            in f.keys()
        )
    from_diffusers = _image(pipeline_factory(), result.lora_path)
    from_kohya = _image(pipeline_factory(), result.kohya_path)
    np.testing.assert_allclose(from_kohya, from_diffusers, atol=1e-4)
