"""Cross-job batching at the generation layer: several jobs' images in one pipeline call, each image
the one its job alone would get."""

import numpy as np
import pytest
import torch

from enchant_worker.generation.errors import BrokenImage, GenerationCancelled, OutOfMemory
from enchant_worker.generation.generate import batchable, generate, generate_batch
from enchant_worker.generation.params import GenerationParams

from .conftest import TEST_STEPS, make_params


def pixels(outcome) -> list:
    return [np.asarray(image).tolist() for image in outcome.images]


def members() -> list[GenerationParams]:
    # Different prompts, negative prompts, seeds and counts: what different users' jobs differ in.
    a = make_params("a lighthouse at night", seeds=(11, 12))
    b = make_params("a fox in the snow", seeds=(99,))
    c = GenerationParams("the queen's portrait", "", make_params(seeds=(5, 6, 7)).settings)
    return [a, b, c]


def differing_pixels(a: list, b: list) -> tuple[int, float]:
    """The largest difference of two images (0-255) and the share of values that differ at all."""
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    return int(diff.max()), float((diff > 0).mean())


def assert_same_pictures(one, other) -> None:
    assert pixels(one) == pixels(other)


def test_every_image_of_a_batch_is_the_image_of_its_job_run_alone(resident, monkeypatch):
    noise = []
    real = resident.pipe.prepare_latents
    monkeypatch.setattr(
        resident.pipe, "prepare_latents", lambda *a, **k: noise.append(real(*a, **k)) or noise[-1]
    )
    alone = [generate(resident, params) for params in members()]
    batched = generate_batch(resident, members())
    assert [outcome.seeds for outcome in batched] == [(11, 12), (99,), (5, 6, 7)]
    assert all(outcome.batch_size == 6 for outcome in batched)  # one call for the six images
    # Each image starts from exactly the noise it starts from alone (its own generator and seed) ...
    assert torch.equal(torch.cat(noise[:3]), noise[3])
    # ... and ends as the same picture, bit for bit (generation.batch_invariance)
    for single, together in zip(alone, batched, strict=True):
        assert_same_pictures(single, together)
    # a comparison that can fail: another member's image is another picture
    largest, share = differing_pixels(pixels(batched[0])[0], pixels(batched[1])[0])
    assert largest > 50 and share > 0.5


def test_without_guidance_one_image_alone_is_the_same_image_batched(resident, monkeypatch):
    # No guidance: one image alone is a batch of one, the shape whose convolutions torch runs apart.
    # Its latents are compared: a difference in the last bits seldom reaches a pixel.
    import enchant_worker.generation.generate as gen

    decoded, real = [], gen._decode
    monkeypatch.setattr(gen, "_decode", lambda pipe, latents: decoded.append(latents) or real(pipe, latents))
    solo = [make_params("a fox in the snow", seeds=(s,), cfg_scale=1.0) for s in (99, 100, 101)]
    alone = [generate(resident, params) for params in solo]
    batched = generate_batch(resident, solo)
    assert torch.equal(torch.cat(decoded[:3]), decoded[3])
    for single, together in zip(alone, batched, strict=True):
        assert_same_pictures(single, together)


def test_a_member_cancelled_mid_run_loses_only_its_images(resident):
    steps = []
    cancelled = {"b": False}

    def on_progress(done, total):
        steps.append(done)
        if done == 1:
            cancelled["b"] = True  # cancelled after the first step, while the call runs

    a, b, c = members()
    outcomes = generate_batch(
        resident, [a, b, c], on_progress, [lambda: False, lambda: cancelled["b"], lambda: False]
    )
    assert isinstance(outcomes[1], GenerationCancelled)
    assert steps == list(range(1, TEST_STEPS + 1))  # the others ran to the end
    assert_same_pictures(outcomes[0], generate(resident, a))
    assert_same_pictures(outcomes[2], generate(resident, c))


def test_the_call_stops_when_every_member_is_cancelled(resident, monkeypatch):
    decoded = []
    monkeypatch.setattr(resident.pipe.vae, "decode", lambda *a, **k: decoded.append(1))
    steps = []
    with pytest.raises(GenerationCancelled):
        generate_batch(
            resident,
            members()[:2],
            lambda done, total: steps.append(done),
            [lambda: len(steps) >= 1, lambda: len(steps) >= 1],
        )
    assert steps == [1] and decoded == []


def test_out_of_memory_splits_the_batch_and_every_member_completes(resident, monkeypatch):
    import enchant_worker.generation.generate as gen

    real, sizes = gen._denoise, []

    def tight_memory(pipe, settings, items, *rest):
        sizes.append(len(items))
        if len(items) > 3:  # torch's own out-of-memory type, as CUDA raises it
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pipe, settings, items, *rest)

    expected = [generate(resident, params) for params in members()]
    monkeypatch.setattr(gen, "_denoise", tight_memory)
    outcomes = generate_batch(resident, members())
    assert sizes == [6, 3, 3]  # 6 fails, then two calls of 3
    for alone, split in zip(expected, outcomes, strict=True):
        assert_same_pictures(alone, split)
    assert all(outcome.batch_size == 3 for outcome in outcomes)

    monkeypatch.setattr(gen, "_denoise", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("fake")))
    with pytest.raises(OutOfMemory, match="batch size 1, 64x64; lower the size"):
        generate_batch(resident, members())


def test_a_broken_image_fails_only_its_member(resident, monkeypatch):
    import enchant_worker.generation.generate as gen

    real = gen._decode

    def decode_b_black(pipe, latents):
        out = real(pipe, latents)
        out[2] = 0  # the third image of the batch is member b's (a has two)
        return out

    monkeypatch.setattr(gen, "_decode", decode_b_black)
    a, b, c = generate_batch(resident, members())
    assert isinstance(b, BrokenImage) and "seed 99 is black" in str(b)
    assert len(a.images) == 2 and len(c.images) == 3


def test_members_that_differ_in_settings_or_loras_are_refused(resident, lora_files):
    from enchant_worker.generation.adapters import LoraRequest

    assert batchable(members())
    other_steps = make_params(steps=TEST_STEPS + 1)
    with_lora = make_params(loras=(LoraRequest("ink", lora_files["ink"], 1.0),))
    assert not batchable([members()[0], other_steps])
    assert not batchable([members()[0], with_lora])
    with pytest.raises(ValueError, match="run them apart"):
        generate_batch(resident, [members()[0], other_steps])
