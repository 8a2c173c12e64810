from pathlib import Path

import pytest

from enchant_worker.generation.device import resolve_device
from enchant_worker.generation.errors import ConfigurationError, ModelNotFound
from enchant_worker.model_catalog import ModelRegistry

REPO = Path(__file__).resolve().parents[3]


def test_the_tiny_model_is_the_default_without_a_config(tmp_path):
    registry = ModelRegistry.load(tmp_path, None)
    spec = registry.get(None)
    assert (spec.name, spec.family, spec.builtin, spec.defaults["width"]) == ("tiny-sd", "sd15", "tiny", 64)


def test_the_shipped_config_loads(tmp_path):
    registry = ModelRegistry.load(tmp_path, REPO / "configs" / "models.toml")
    assert registry.default == "tiny-sd" and registry.get("tiny-sd").path == tmp_path / "tiny-sd"


def test_entries_are_checked(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text('[models.sd15]\npath = "sd15/model.safetensors"\nfamily = "sd15"\n')
    with pytest.raises(ConfigurationError, match="needs 'config'"):
        ModelRegistry.load(tmp_path, config)
    config.write_text('[models.x]\npath = "x.ckpt"\n')
    with pytest.raises(ConfigurationError, match="never pickle"):
        ModelRegistry.load(tmp_path, config)
    config.write_text('[models.x]\npath = "x"\nfamily = "sd3"\n')
    with pytest.raises(ConfigurationError, match="family must be one of sd15, sdxl"):
        ModelRegistry.load(tmp_path, config)
    config.write_text('default = "nope"\n')
    with pytest.raises(ConfigurationError, match="default model 'nope'"):
        ModelRegistry.load(tmp_path, config)


def test_single_file_and_defaults(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text(
        'default = "xl"\n[models.xl]\npath = "xl.safetensors"\nconfig = "xl-config"\nfamily = "sdxl"\n'
    )
    spec = ModelRegistry.load(tmp_path, config).get(None)
    assert spec.single_file and spec.config == tmp_path / "xl-config" and spec.defaults["width"] == 1024


def test_unknown_model_names_the_known_ones(tmp_path):
    with pytest.raises(ModelNotFound, match="model: unknown model 'nope'; known models: tiny-sd"):
        ModelRegistry.load(tmp_path, None).get("nope")


def test_device_policy_on_cpu():
    policy = resolve_device("auto")
    assert str(policy.dtype) == "torch.float32" or policy.is_cuda
    with pytest.raises(ConfigurationError, match="device must be one of auto, cuda, cpu"):
        resolve_device("tpu")
    with pytest.raises(ConfigurationError, match="dtype must be one of"):
        resolve_device("cpu", "int8")
    with pytest.raises(ConfigurationError, match="not supported on the CPU"):
        resolve_device("cpu", "float16")
