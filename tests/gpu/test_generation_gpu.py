"""Generation on a CUDA device: the real SD 1.5 architecture (random weights), fp16."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def resident(tmp_path_factory):
    from enchant_worker.generation.device import resolve_device
    from enchant_worker.generation.model_registry import ModelSpec
    from enchant_worker.generation.pipelines import PipelineCache
    from enchant_worker.generation.tiny_model import build_sd15_random

    root = tmp_path_factory.mktemp("gpu")
    cache = PipelineCache(resolve_device("cuda"), [root])
    spec = ModelSpec("sd15-random", root / "none", "sd15")
    return cache.adopt(spec, build_sd15_random(device="cuda", dtype=torch.float16))


def test_fp16_sd15_is_reproducible_and_cancellable(resident):
    import numpy as np

    from enchant_worker.generation.errors import GenerationCancelled
    from enchant_worker.generation.generate import generate
    from enchant_worker.generation.params import GenerationParams, validate_settings

    params = GenerationParams(
        "a castle",
        "",
        validate_settings({"seeds": [1, 2], "steps": 4, "width": 256, "height": 256}),
        nan_guard=False,
    )
    a = generate(resident, params)
    b = generate(resident, params)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images, strict=True))
    steps = []
    with pytest.raises(GenerationCancelled):
        generate(resident, params, on_progress=lambda d, t: steps.append(d), is_cancelled=lambda: bool(steps))
    assert steps == [1]
    assert torch.cuda.memory_allocated() < 8 * 1024**3
