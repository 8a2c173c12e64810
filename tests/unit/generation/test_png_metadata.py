from PIL import Image

from enchant_worker.generation.png_metadata import (
    ImageParameters,
    format_parameters,
    read_png_metadata,
    save_png,
)

PARAMS = ImageParameters(
    prompt="Mara, fear expression, at night",
    negative_prompt="blurry, text",
    steps=20,
    sampler="DPM++ 2M Karras",
    cfg_scale=7.5,
    seed=1234,
    width=64,
    height=64,
    model="tiny-sd",
    loras=(("ink", 0.8, "abcdef123456"), ("water", 0.5, "0123456789ab")),
    version="enchant-worker 0.1.0",
)


def test_parameters_text_is_automatic1111_shaped():
    assert format_parameters(PARAMS) == (
        "Mara, fear expression, at night <lora:ink:0.8> <lora:water:0.5>\n"
        "Negative prompt: blurry, text\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234, Size: 64x64, Model: tiny-sd, "
        'Lora hashes: "ink: abcdef123456, water: 0123456789ab", Version: enchant-worker 0.1.0'
    )


def test_png_round_trip(tmp_path):
    spec = {"job_id": "j1", "scene_id": "s1", "story_id": "st1", "prompt": PARAMS.prompt, "seeds": [1234]}
    path = save_png(Image.new("RGB", (64, 64), "red"), tmp_path / "a.png", PARAMS, spec)
    parameters, read_spec = read_png_metadata(path)
    assert read_spec == spec
    assert parameters["prompt"] == PARAMS.prompt and parameters["negative_prompt"] == "blurry, text"
    assert parameters["loras"] == [("ink", 0.8), ("water", 0.5)]
    assert parameters["Lora hashes"] == {"ink": "abcdef123456", "water": "0123456789ab"}
    assert (parameters["Steps"], parameters["Seed"], parameters["Size"], parameters["CFG scale"]) == (
        "20",
        "1234",
        "64x64",
        "7.5",
    )
    assert not list(tmp_path.glob("*.partial"))


def test_non_latin_prompt_round_trips(tmp_path):
    params = ImageParameters("Émilie, 龍, smiling", "", 5, "Euler", 7.0, 1, 64, 64, "tiny-sd")
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "b.png", params, {})
    parameters, _ = read_png_metadata(path)
    assert parameters["prompt"] == "Émilie, 龍, smiling" and parameters["negative_prompt"] == ""
