"""`<lora:NAME:W>` tags in a generate_image spec, A1111's parameters text read back, model hashes."""

from __future__ import annotations

import hashlib

import pytest

from enchant_worker.api.compat.a1111_models import a1111_fields
from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.generate_image import GenerateImageSpec, split_lora_tags
from enchant_worker.model_catalog import ModelSpec, model_sha256, model_short_hash


def test_tags_are_taken_out_of_the_prompt_and_become_loras():
    spec = parse(
        GenerateImageSpec,
        {
            "prompt": "ink style, a cat <lora:ink:0.8> <lora:water>",
            "loras": [{"name": "ink", "strength": 0.5}],
        },
    )
    assert spec.prompt == "ink style, a cat"
    assert [(lo.name, lo.strength) for lo in spec.loras] == [
        ("ink", 0.5),
        ("water", 1.0),
    ]  # the job's own wins
    assert split_lora_tags("<lora:a:b:0.3>, a dog") == ("a dog", [("a:b", 0.3)])  # a ':' in a name


@pytest.mark.parametrize(
    "prompt, words",
    [
        ("a cat <lora:ink:heavy>", "malformed tag '<lora:ink:heavy>'"),
        ("a cat <lora::1>", "the LoRA's name is missing"),
        ("a cat <lora:ink:1", "closed with '>'"),
        ("a cat <lora:ink:7>", "the weight must be from 0.0 to 2.0"),
        ("a <lora:a> <lora:b> <lora:c> <lora:d> <lora:e> <lora:f>", "at most 5 LoRAs"),
        ("<lora:ink:1>", "prompt"),  # nothing left to draw
    ],
)
def test_bad_tags_are_refused_naming_the_prompt(prompt, words):
    with pytest.raises(InvalidJob, match="prompt") as exc:
        parse(GenerateImageSpec, {"prompt": prompt})
    assert words in str(exc.value)


def test_a1111_fields_reads_our_parameters_text():
    text = (
        "ink style, a cat <lora:ink:0.8>\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, CFG scale: 7, "
        'Seed: 5, Size: 64x48, Model hash: 0123456789, Model: tiny-sd, Lora hashes: "ink: abcdef012345"'
    )
    f = a1111_fields(text)
    assert f["Prompt"] == "ink style, a cat <lora:ink:0.8>" and f["Negative prompt"] == "blurry"
    assert (f["Steps"], f["Seed"], f["Size-1"], f["Size-2"], f["Model"]) == ("20", "5", "64", "48", "tiny-sd")
    assert f["Lora hashes"] == "ink: abcdef012345"


def test_model_hashes(tmp_path):
    single = tmp_path / "one.safetensors"
    single.write_bytes(b"weights")
    spec = ModelSpec("one", single, "sd15", config=tmp_path)
    assert model_sha256(spec) == hashlib.sha256(b"weights").hexdigest()  # A1111's: the whole file
    assert model_short_hash(spec) == hashlib.sha256(b"weights").hexdigest()[:10]
    folder = tmp_path / "diffusers"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.safetensors").write_bytes(b"u")
    (folder / "model_index.json").write_text("{}")
    expected = hashlib.sha256(
        f"unet/w.safetensors\n{hashlib.sha256(b'u').hexdigest()}\n".encode()
    ).hexdigest()
    assert model_sha256(ModelSpec("d", folder, "sd15")) == expected
    (folder / "model_index.json").write_text('{"changed": 1}')  # configs do not count
    assert model_sha256(ModelSpec("d", folder, "sd15")) == expected
    assert model_sha256(ModelSpec("none", tmp_path / "missing", "sd15")) is None


def test_names_with_colons_and_commas_keep_the_format():
    from enchant_worker.generation.png_metadata import ImageParameters, format_parameters

    text = format_parameters(
        ImageParameters(
            prompt="a cat",
            negative_prompt="",
            steps=2,
            sampler="Euler",
            cfg_scale=7,
            seed=1,
            width=64,
            height=64,
            model="my: model, v2",
            model_hash="0123456789",
            loras=[("ink:v1, final", 0.5, "abcdef012345")],
        )
    )
    f = a1111_fields(text)
    assert f["Model"] == "my: model, v2" and f["Steps"] == "2" and f["Model hash"] == "0123456789"
    assert f["Lora hashes"] == "inkv1 final: abcdef012345"
    assert split_lora_tags(f["Prompt"]) == ("a cat", [("ink:v1, final", 0.5)])
