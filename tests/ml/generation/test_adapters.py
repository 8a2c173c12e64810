import os
import pickle

import numpy as np
import pytest

from enchant_worker.generation.adapters import AdapterCache, LoraRequest, check_lora_path, read_header
from enchant_worker.generation.errors import LoraRefused
from enchant_worker.generation.generate import generate
from enchant_worker.training.export import to_diffusers

from .conftest import make_params


def image(resident, loras=()):
    return np.asarray(generate(resident, make_params(loras=loras)).images[0], dtype=np.int16)


def test_strength_zero_equals_the_base_image_and_0_8_differs(resident, lora_files):
    base = image(resident)
    zero = image(resident, [LoraRequest("ink", lora_files["ink"], 0.0)])
    styled = image(resident, [LoraRequest("ink", lora_files["ink"], 0.8)])
    assert np.array_equal(base, zero)
    assert np.abs(styled - base).mean() > 1.0
    assert np.array_equal(image(resident), base)  # no LoRA again: back to the base image


def test_two_stacked_loras_differ_from_each_alone(resident, lora_files):
    ink = image(resident, [LoraRequest("ink", lora_files["ink"], 0.8)])
    water = image(resident, [LoraRequest("water", lora_files["water"], 0.8)])
    both = image(
        resident, [LoraRequest("ink", lora_files["ink"], 0.8), LoraRequest("water", lora_files["water"], 0.8)]
    )
    assert np.abs(both - ink).mean() > 1.0 and np.abs(both - water).mean() > 1.0


def test_a_loaded_set_is_reused_and_switching_is_cheap(resident, lora_files):
    first = resident.adapters.activate([LoraRequest("ink", lora_files["ink"], 0.8)])
    again = resident.adapters.activate([LoraRequest("ink", lora_files["ink"], 0.5)])
    assert again.reused == ["ink"] and again.loaded == [] and again.load_s == 0.0
    assert first.active[0]["hash"] == again.active[0]["hash"] and len(again.active[0]["hash"]) == 12


@pytest.fixture()
def own_pipe():
    from enchant_worker.generation.tiny_model import build_tiny_pipeline

    return build_tiny_pipeline()


def test_lru_is_bounded_by_count_and_evicts_with_delete_adapters(own_pipe, lora_files):
    cache = AdapterCache(own_pipe, [lora_files["ink"].parent], max_count=1)
    cache.activate([LoraRequest("ink", lora_files["ink"], 0.8)])
    report = cache.activate([LoraRequest("water", lora_files["water"], 0.8)])
    assert report.evicted == ["ink.safetensors"]
    assert [a.path.name for a in cache.loaded] == ["water.safetensors"]
    assert own_pipe.get_list_adapters()["unet"] == ["lora_" + cache.loaded[0].hashes.sha256[:16]]


def test_lru_is_bounded_by_bytes(own_pipe, lora_files):
    size = lora_files["ink"].stat().st_size
    cache = AdapterCache(own_pipe, [lora_files["ink"].parent], max_count=8, max_bytes=size + 1)
    cache.activate([LoraRequest("ink", lora_files["ink"], 0.8)])
    assert cache.activate([LoraRequest("water", lora_files["water"], 0.8)]).evicted == ["ink.safetensors"]


def test_path_traversal_is_refused(lora_files, tmp_path):
    root = lora_files["ink"].parent
    outside = tmp_path / "evil.safetensors"
    outside.write_bytes(lora_files["ink"].read_bytes())
    with pytest.raises(LoraRefused, match="outside the allowed folders"):
        check_lora_path(root / os.path.relpath(outside, root), [root])
    link = root / "link.safetensors"
    link.symlink_to(outside)
    try:
        with pytest.raises(LoraRefused, match="outside the allowed folders"):
            check_lora_path(link, [root])
    finally:
        link.unlink()


def test_pickle_is_refused_by_extension_and_by_content(lora_files):
    root = lora_files["ink"].parent
    for name in ("style.ckpt", "style.pt", "style.bin"):
        (root / name).write_bytes(pickle.dumps({"a": 1}))
        with pytest.raises(LoraRefused, match="not a .safetensors file"):
            check_lora_path(root / name, [root])
    disguised = root / "disguised.safetensors"
    disguised.write_bytes(pickle.dumps({"weights": list(range(100))}))
    with pytest.raises(LoraRefused, match="not a safetensors file"):
        read_header(disguised)


def test_missing_and_truncated_files_are_refused(resident, lora_files):
    root = lora_files["ink"].parent
    with pytest.raises(LoraRefused, match="missing"):
        check_lora_path(root / "nope.safetensors", [root])
    truncated = root / "truncated.safetensors"
    truncated.write_bytes(lora_files["ink"].read_bytes()[:-100])
    with pytest.raises(LoraRefused, match="truncated"):
        resident.adapters.activate([LoraRequest("truncated", truncated, 0.8)])


def test_a_lora_for_another_family_is_refused(resident, lora_files, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(lora_files["ink"]))
    root = lora_files["ink"].parent
    save_file(state, str(root / "xl.safetensors"), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    with pytest.raises(LoraRefused, match="made for sdxl"):
        resident.adapters.activate([LoraRequest("xl", root / "xl.safetensors", 0.8)])
    wrong = {k: v[:, :5].contiguous() if k.endswith("lora_A.weight") else v for k, v in state.items()}
    save_file(wrong, str(root / "wrong.safetensors"))
    # the same misfit in the processor-style keys our exports write
    peft = {k.removeprefix("unet."): v for k, v in wrong.items()}
    save_file(to_diffusers("unet", peft, 1.0), str(root / "wrong-export.safetensors"))
    for name in ("wrong", "wrong-export"):
        with pytest.raises(LoraRefused, match="does not fit"):
            resident.adapters.activate([LoraRequest(name, root / f"{name}.safetensors", 0.8)])
    assert np.array_equal(image(resident), image(resident))  # the pipeline still works


def test_the_same_file_twice_is_refused(resident, lora_files):
    with pytest.raises(LoraRefused, match="same file"):
        resident.adapters.activate(
            [LoraRequest("a", lora_files["ink"], 0.5), LoraRequest("b", lora_files["ink"], 0.5)]
        )
