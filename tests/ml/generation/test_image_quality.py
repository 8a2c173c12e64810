"""The image quality analysis (numpy on the image), the CLIP model lookup and the tiny CLIP scorer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from enchant_worker.content_address import content_hash
from enchant_worker.generation.image_quality import (
    ANALYSIS_MAX_SIDE_PX,
    analyze_file,
    analyze_image,
    below,
    check_stored,
    load_image,
)
from enchant_worker.model_catalog import ModelRegistry, clip_for


def picture(seed: int = 0, size: int = 128) -> Image.Image:
    """A well-exposed image with edges: smooth gradients plus shapes plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.3 + 0.4 * x, 0.3 + 0.4 * y, 0.5 - 0.2 * x], axis=2)
    base[size // 4 : size // 2, size // 4 : 3 * size // 4] = [0.9, 0.2, 0.1]
    base[3 * size // 5 :, : size // 3] = [0.05, 0.1, 0.3]
    noisy = np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1)
    return Image.fromarray((noisy * 255).astype(np.uint8))


def test_a_good_picture_scores_well_without_flags():
    quality = analyze_image(picture())
    assert quality["status"] == "ok" and quality["flags"] == [] and quality["score"] > 0.7
    assert 0.3 < quality["exposure"] < 0.7 and quality["contrast"] > 0.1
    assert set(quality["scores"]) == {"exposure", "contrast", "sharpness", "clipping"}


def test_blur_lowers_sharpness_and_dark_images_are_flagged():
    sharp = analyze_image(picture())
    blurred = analyze_image(picture().filter(ImageFilter.GaussianBlur(4)))
    assert blurred["sharpness"] < sharp["sharpness"] / 10 and blurred["score"] < sharp["score"]
    assert "blurry" in blurred["flags"]
    dark = analyze_image(Image.fromarray((np.asarray(picture()) * 0.15).astype(np.uint8)))
    assert "underexposed" in dark["flags"] and dark["score"] < sharp["score"]
    bright = analyze_image(Image.fromarray(np.full((64, 64, 3), 240, np.uint8)))
    assert bright["status"] == "broken" and "blank" in bright["flags"]


@pytest.mark.parametrize(
    ("pixels", "flag"),
    [
        (np.zeros((64, 64, 3), np.uint8), "black"),
        (np.full((64, 64, 3), 1, np.uint8), "black"),  # 1/255: below the black threshold, as generation says
        (np.full((64, 64, 3), 128, np.uint8), "blank"),
        (np.full((64, 64, 3), np.nan, np.float32), "nan"),
    ],
)
def test_black_blank_and_nan_images_are_broken_and_score_zero(pixels, flag):
    quality = analyze_image(pixels if pixels.dtype != np.uint8 else Image.fromarray(pixels))
    assert quality["status"] == "broken" and flag in quality["flags"] and quality["score"] == 0.0
    assert below(quality, 0.0)  # a broken image is always re-drawn when asked


def test_a_float_array_with_some_nan_is_flagged_with_the_fraction():
    array = np.asarray(picture(), dtype=np.float32) / 255
    array[:8, :8] = np.nan
    quality = analyze_image(array)
    assert "nan" in quality["flags"] and quality["nan_fraction"] == pytest.approx(
        64 * 3 / array.size, abs=1e-4
    )


def test_large_images_are_analysed_at_a_bounded_size():
    quality = analyze_image(picture(size=1024))
    assert max(quality["analysed_size"]) == ANALYSIS_MAX_SIDE_PX and quality["status"] == "ok"
    small = analyze_image(picture(size=ANALYSIS_MAX_SIDE_PX))  # the same picture, smaller: similar measures
    assert (
        abs(small["exposure"] - quality["exposure"]) < 0.02
        and abs(small["contrast"] - quality["contrast"]) < 0.02
    )


def test_missing_empty_corrupt_and_truncated_files_say_so(tmp_path):
    good = tmp_path / "good.png"
    picture().save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"not a png at all")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:200])
    assert load_image(good)[1] is None
    for name, words in (
        ("missing.png", "is missing"),
        ("empty.png", "not an image"),
        ("text.png", "not an image"),
        ("truncated.png", "could not be decoded"),
    ):
        quality, image = analyze_file(tmp_path / name)
        assert image is None and quality["status"] == "unreadable" and quality["score"] is None, name
        assert words in quality["reason"] and name in quality["reason"], quality
        assert below(quality, 0.0)


def test_a_stored_file_is_checked_against_the_bytes_written(tmp_path):
    path = tmp_path / "image.png"
    picture().save(path)
    written = content_hash(path.read_bytes())
    assert check_stored(path, written) is None
    path.write_bytes(path.read_bytes()[:100])
    assert "is corrupt: its 100 bytes are not those written" in check_stored(path, written)
    path.unlink()
    assert check_stored(path, written) == "the image file image.png is missing"


def test_the_analysis_imports_no_torch():
    code = (
        "import sys; import enchant_worker.generation.image_quality, enchant_worker.model_catalog; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- which CLIP model scores alignment ----------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text('default = "tiny-sd"\n[models.tiny-sd]\npath = "tiny-sd"\nbuiltin = "tiny"\n' + text)
    return path


def test_no_clip_model_is_skipped_with_how_to_add_one(tmp_path):
    spec, reason = clip_for(tmp_path, write_config(tmp_path, ""), "tiny-sd")
    assert spec is None and 'kind = "clip"' in reason and "tiny-sd" in reason
    spec, reason = clip_for(tmp_path, None, None)
    assert spec is None and "configs/models.toml" in reason


def test_clip_models_are_found_by_name_default_or_alone_and_not_taken_for_base_models(tmp_path):
    (tmp_path / "clip-l").mkdir()
    (tmp_path / "clip-l" / "config.json").write_text("{}")
    config = write_config(tmp_path, '[models.clip-l]\nkind = "clip"\npath = "clip-l"\n')
    spec, source = clip_for(tmp_path, config, "tiny-sd")
    assert spec.name == "clip-l" and "only clip model" in source
    assert "clip-l" not in ModelRegistry.load(tmp_path, config).names()  # not an image model
    config = write_config(
        tmp_path, '[models.a]\nkind = "clip"\npath = "clip-l"\n[models.b]\nkind = "clip"\npath = "nowhere"\n'
    )
    assert "set default_clip" in clip_for(tmp_path, config, None)[1]
    config.write_text(
        config.read_text().replace('default = "tiny-sd"', 'default = "tiny-sd"\ndefault_clip = "b"')
    )
    spec, reason = clip_for(tmp_path, config, None)
    assert spec is None and "config.json missing" in reason  # named, but not on disk
    config.write_text(config.read_text().replace('default_clip = "b"', 'default_clip = "zzz"'))
    assert (
        "'zzz'" in clip_for(tmp_path, config, None)[1]
        and "defined: a, b" in clip_for(tmp_path, config, None)[1]
    )


def test_a_base_model_folder_may_carry_its_own_clip(tmp_path):
    (tmp_path / "tiny-sd" / "clip").mkdir(parents=True)
    (tmp_path / "tiny-sd" / "clip" / "config.json").write_text("{}")
    spec, source = clip_for(tmp_path, write_config(tmp_path, ""), "tiny-sd")
    assert spec.path == tmp_path / "tiny-sd" / "clip" and "clip/ folder" in source


def test_the_tiny_clip_scores_a_prompt_against_an_image(tmp_path):
    from enchant_worker.generation.clip_alignment import ClipScorer
    from enchant_worker.model_catalog import ClipSpec

    scorer = ClipScorer(ClipSpec("tiny-clip", tmp_path / "tiny-clip", "tiny"))  # built on first use
    first = scorer.similarity("a castle at night", picture())
    assert first == scorer.similarity("a castle at night", picture())  # deterministic
    assert first["status"] == "ok" and -1 <= first["similarity"] <= 1 and first["prompt_truncated"] is False
    assert scorer.similarity("castle " * 100, picture(size=300))["prompt_truncated"] is True
