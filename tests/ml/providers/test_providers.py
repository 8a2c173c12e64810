import os
from importlib.metadata import EntryPoint

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from enchant_worker.errors import ConfigurationError  # noqa: E402
from enchant_worker.providers import (  # noqa: E402
    GenerationRequest,
    GenerationResult,
    ImageProvider,
    ModelInfo,
    ProviderRegistry,
    SceneTraits,
    UserPreferences,
    ValidationResult,
    select_optimal_provider,
)
from enchant_worker.providers.base import CAP_ARTISTIC  # noqa: E402


class FakeProvider:
    def __init__(self, name="fake", cost=0.02, capabilities=frozenset(), available=True):
        self.name, self.cost_per_image, self.capabilities, self._available = (
            name,
            cost,
            capabilities,
            available,
        )

    models = ["m"]
    default_parameters = {"steps": 10}

    def is_available(self):
        return self._available

    def generate(self, request, on_progress=None, is_cancelled=None):
        return GenerationResult([], [], "m", {})

    def get_model_info(self, model_name):
        return ModelInfo(model_name)

    def validate_parameters(self, params):
        return ValidationResult(True)


def artistic_factory(**options):
    return FakeProvider("artsy", cost=0.04, capabilities=frozenset({CAP_ARTISTIC}))


def registry_with(*providers):
    registry = ProviderRegistry.default(plugins=False)
    registry._factories.pop("local")
    registry.register(FakeProvider("local", cost=0.0))  # stands in for the local one: no torch here
    for p in providers:
        registry.register(p)
    return registry


def test_importing_providers_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, enchant_worker.providers as p; p.ProviderRegistry.default(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_entry_points_register_and_broken_plugins_are_skipped():
    registry = ProviderRegistry.default(plugins=False)
    eps = [
        EntryPoint("artsy", f"{__name__}:artistic_factory", "enchant_worker.providers"),
        EntryPoint("broken", "no_such_module_xyz:Provider", "enchant_worker.providers"),
    ]
    assert registry.load_entry_points(eps) == ["artsy"]
    assert "broken" in registry.load_errors
    assert registry.names() == ["artsy", "local"]
    assert isinstance(registry.get("artsy"), ImageProvider)
    with pytest.raises(ConfigurationError, match="unknown provider 'nope'; known providers: artsy, local"):
        registry.get("nope")


def test_selection_follows_the_seed_order_through_roles():
    registry = registry_with(artistic_factory(), FakeProvider("stability", cost=0.01))
    registry.roles = {"midjourney": "artsy", "stability": "stability"}
    romantic, other = SceneTraits("romantic"), SceneTraits("tense")
    # 1. romantic + artistic first, whatever the tier (the seed checks it before the tier)
    for tier in ("free", "pro"):
        chosen = select_optimal_provider(registry, romantic, UserPreferences("artistic", tier))
        assert chosen.provider.name == "artsy" and chosen.role == "midjourney"
    # 2. free tier: the stability role; 3. default: the stability role too
    assert (
        select_optimal_provider(registry, other, UserPreferences("artistic", "free")).provider.name
        == "stability"
    )
    chosen = select_optimal_provider(registry, romantic, UserPreferences(None, "pro"))
    assert chosen.provider.name == "stability" and chosen.reason.startswith("default")
    # roles left unset are the local provider
    registry.roles = {}
    assert (
        select_optimal_provider(registry, romantic, UserPreferences("artistic", "pro")).provider.name
        == "local"
    )


def test_a_provider_that_is_down_falls_back_to_the_cheapest_available():
    registry = registry_with(
        FakeProvider("artsy", 0.04, frozenset({CAP_ARTISTIC}), available=False), FakeProvider("cheap", 0.0)
    )
    registry.roles = {"midjourney": "artsy"}
    selection = select_optimal_provider(registry, SceneTraits("romantic"), UserPreferences("artistic", "pro"))
    assert selection.provider.name == "local" and "artsy is down; fell back to local" in selection.reason


def test_local_provider_generates_and_validates(tmp_path):
    from enchant_worker.generation.tiny_model import save_tiny_model
    from enchant_worker.providers.local import LocalDiffusersProvider

    save_tiny_model(tmp_path / "tiny-sd")
    provider = LocalDiffusersProvider(models_dir=tmp_path, models_config=None, device="cpu")
    assert isinstance(provider, ImageProvider) and provider.models == ["tiny-sd"]
    assert provider.get_model_info("tiny-sd").family == "sd15"
    bad = provider.validate_parameters({"steps": 0})
    assert not bad.valid and bad.errors == ("steps: must be from 1 to 150, not 0",)
    result = provider.generate(GenerationRequest("a castle", parameters={"seed": 3, "count": 2, "steps": 2}))
    assert result.seeds == [3, 4] and len(result.images) == 2 and result.parameters["width"] == 64
    assert set(result.timings_s) == {"model_load_s", "adapters_s", "denoise_s", "decode_s"}
