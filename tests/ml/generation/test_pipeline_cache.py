"""Resident base models: an LRU bounded by a count or a byte budget (the device's memory on CUDA)."""

import shutil

import pytest

from enchant_worker.generation.device import resolve_device
from enchant_worker.generation.pipelines import PipelineCache, ResidencyBudget, weights_on_disk
from enchant_worker.model_catalog import ModelSpec


@pytest.fixture(scope="module")
def specs(models_dir, tmp_path_factory):
    """Three models (copies of the tiny one under other names)."""
    folder = tmp_path_factory.mktemp("lru-models")
    out = {}
    for name in ("a", "b", "c"):
        shutil.copytree(models_dir / "tiny-sd", folder / name)
        out[name] = ModelSpec(name=name, path=folder / name, family="sd15")
    return out


def _cache(models_dir, **budget):
    return PipelineCache(resolve_device("cpu"), [models_dir], ResidencyBudget(**budget))


def test_the_least_recently_used_model_is_evicted(models_dir, specs):
    cache = _cache(models_dir, max_models=2)
    cache.get(specs["a"])
    cache.get(specs["b"])
    assert cache.get(specs["a"])[1] == 0.0  # resident: no load, and now the most recent
    cache.get(specs["c"])  # no room: b, the least recently used, goes
    assert list(cache.resident()) == ["a", "c"]
    assert cache.loads == 3
    _, load_s = cache.get(specs["b"])
    assert load_s > 0 and list(cache.resident()) == ["c", "b"] and cache.loads == 4


def test_a_byte_budget_holds_what_fits(models_dir, specs):
    one = _cache(models_dir, max_models=1)
    resident, _ = one.get(specs["a"])
    size = resident.nbytes
    assert size > 0 and weights_on_disk(specs["a"]) > 0
    cache = _cache(models_dir, max_bytes=int(size * 2.5))  # room for two
    for name in ("a", "b", "c"):
        cache.get(specs[name])
    assert list(cache.resident()) == ["b", "c"]
    tight = _cache(models_dir, max_bytes=int(size * 1.5))  # room for one: every switch reloads
    tight.get(specs["a"])
    tight.get(specs["b"])
    assert list(tight.resident()) == ["b"]


def test_a_model_larger_than_the_budget_still_loads_alone(models_dir, specs):
    cache = _cache(models_dir, max_bytes=1)
    cache.get(specs["a"])
    cache.get(specs["b"])
    assert list(cache.resident()) == ["b"]


def test_the_cpu_keeps_one_model_unless_configured(models_dir, specs):
    cache = _cache(models_dir)
    cache.get(specs["a"])
    cache.get(specs["b"])
    assert list(cache.resident()) == ["b"]


def test_resident_reports_the_loaded_lora_files(models_dir, specs, lora_files):
    from enchant_worker.generation.adapters import LoraRequest, file_hashes

    cache = _cache(models_dir, max_models=2)
    resident, _ = cache.get(specs["a"])
    resident.adapters.activate([LoraRequest("ink", lora_files["ink"], 1.0)])
    cache.get(specs["b"])
    assert cache.resident() == {"a": frozenset({file_hashes(lora_files["ink"]).sha256}), "b": frozenset()}


@pytest.mark.parametrize("budget", [{"max_models": 0}, {"max_bytes": 0}])
def test_a_budget_of_nothing_is_refused(budget):
    with pytest.raises(ValueError, match="must be"):
        ResidencyBudget(**budget)


def test_on_cuda_a_model_fits_the_free_memory_less_the_reserve(monkeypatch):
    """The CUDA budget's arithmetic (no GPU here: the device's free memory is stubbed)."""
    import torch

    from enchant_worker.generation.device import DevicePolicy

    gib = 1024**3
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 80 * gib))
    cache = PipelineCache(DevicePolicy(torch.device("cuda"), torch.float16), [])
    assert cache._fits(8 * gib) and not cache._fits(8 * gib + 1)  # 2 GiB kept for activations
    capped = PipelineCache(
        DevicePolicy(torch.device("cuda"), torch.float16), [], ResidencyBudget(max_models=1)
    )
    capped._resident["a"] = object()  # one model resident: a configured count applies on CUDA too
    assert not capped._fits(1)
