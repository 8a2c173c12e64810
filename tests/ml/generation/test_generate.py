import numpy as np
import pytest
import torch

from enchant_worker.generation.errors import BrokenImage, GenerationCancelled, InvalidGeneration, OutOfMemory
from enchant_worker.generation.generate import generate, truncation_warning

from .conftest import TEST_STEPS, make_params


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_same_seed_gives_the_same_pixels(resident):
    first = generate(resident, make_params(seeds=(11, 12)))
    again = generate(resident, make_params(seeds=(11, 12)))
    assert [pixels(i).tolist() for i in first.images] == [pixels(i).tolist() for i in again.images]
    assert first.seeds == (11, 12)
    assert np.abs(pixels(first.images[0]) - pixels(first.images[1])).max() > 10  # seeds differ


def test_count_images_in_one_call_with_progress_at_each_step(resident):
    steps = []
    outcome = generate(
        resident, make_params(seeds=(1, 2, 3)), on_progress=lambda done, total: steps.append((done, total))
    )
    assert len(outcome.images) == 3 and outcome.batch_size == 3
    assert steps == [(i, TEST_STEPS) for i in range(1, TEST_STEPS + 1)]
    assert set(outcome.timings_s) == {"adapters_s", "denoise_s", "decode_s"}
    assert outcome.images[0].size == (64, 64)


def test_cancellation_within_one_step_skips_the_decode(resident, monkeypatch):
    decoded = []
    monkeypatch.setattr(resident.pipe.vae, "decode", lambda *a, **k: decoded.append(1))
    progress = []
    with pytest.raises(GenerationCancelled):
        generate(
            resident,
            make_params(steps=10),
            on_progress=lambda d, t: progress.append(d),
            is_cancelled=lambda: len(progress) >= 1,
        )
    assert progress == [1]  # stopped at the end of the first step
    assert decoded == []


def test_cancelled_before_start_does_nothing(resident):
    with pytest.raises(GenerationCancelled):
        generate(resident, make_params(), is_cancelled=lambda: True)


def test_nan_latents_are_never_a_success(resident, monkeypatch):
    original = resident.pipe.unet.forward

    def nan_unet(*args, **kwargs):
        out = original(*args, **kwargs)
        out[0].fill_(float("nan")) if not isinstance(out, torch.Tensor) else out.fill_(float("nan"))
        return out

    monkeypatch.setattr(resident.pipe.unet, "forward", nan_unet)
    with pytest.raises(BrokenImage, match="NaN"):
        generate(resident, make_params())


def test_black_images_are_never_a_success(resident, monkeypatch):
    monkeypatch.setattr(
        "enchant_worker.generation.generate._decode",
        lambda pipe, latents: torch.zeros(len(latents), 3, 64, 64),
    )
    with pytest.raises(BrokenImage, match="black"):
        generate(resident, make_params())


def test_out_of_memory_retries_with_smaller_batches_then_fails_clearly(resident, monkeypatch):
    import enchant_worker.generation.generate as gen

    real = gen._denoise
    sizes = []

    def fake(pipe, params, seeds, *rest):
        sizes.append(len(seeds))
        if len(seeds) > 1:
            raise torch.OutOfMemoryError("fake")
        return real(pipe, params, seeds, *rest)

    monkeypatch.setattr(gen, "_denoise", fake)
    outcome = generate(resident, make_params(seeds=(1, 2, 3, 4)))
    assert outcome.batch_size == 1 and len(outcome.images) == 4
    assert sizes == [4, 2, 1, 1, 1, 1]

    monkeypatch.setattr(gen, "_denoise", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("fake")))
    with pytest.raises(OutOfMemory, match="batch size 1"):
        generate(resident, make_params(seeds=(1, 2)))


def test_size_not_a_multiple_of_the_vae_factor_is_refused(resident, monkeypatch):
    monkeypatch.setattr(resident.pipe, "vae_scale_factor", 16)
    with pytest.raises(InvalidGeneration, match="width: must be a multiple of 16"):
        generate(resident, make_params(width=72))


def test_long_prompt_is_truncated_with_a_warning(resident):
    tokenizer = resident.pipe.tokenizer
    assert truncation_warning(tokenizer, "prompt", "the queen") is None
    long_prompt = " ".join(["castle"] * 80)
    warning = truncation_warning(tokenizer, "prompt", long_prompt)
    assert warning.startswith("prompt: 80 tokens, the text encoder takes 75; truncated")
    outcome = generate(resident, make_params(prompt=long_prompt))
    assert outcome.warnings and outcome.warnings[0].startswith("prompt: 80 tokens")
