"""Models and providers: what is configured, what is available, and what the workers have loaded."""

from __future__ import annotations

from fastapi import APIRouter

from enchant_worker.api.deps import PrincipalDep, SettingsDep, StoreDep
from enchant_worker.api.errors import COMMON
from enchant_worker.api.schemas import ModelPublic, ProviderPublic
from enchant_worker.api.versions import BASIC_GENERATION
from enchant_worker.model_catalog import ModelRegistry

router = APIRouter(tags=["models"], responses=COMMON)
FEATURE = BASIC_GENERATION
GENERATION_JOB_TYPE = "generate_image"


def _loaded(device: object) -> list[str]:
    names = device.get("loaded_models") if isinstance(device, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else []


@router.get("/models", response_model=list[ModelPublic])
def list_models(settings: SettingsDep, store: StoreDep, principal: PrincipalDep) -> list[ModelPublic]:
    """Base models from configs/models.toml; `loaded_on` lists the live workers that report the model
    loaded (in `device.loaded_models`)."""
    registry = ModelRegistry.from_settings(settings)  # the worker's own catalogue (ENCHANT_MODELS_CONFIG)
    workers = store.workers()
    models = []
    for name, spec in sorted(registry.models.items()):
        info = spec.info()
        models.append(
            ModelPublic(
                name=name,
                family=spec.family,
                description=spec.description or None,
                default=name == registry.default,
                available=info["available"],
                defaults=dict(spec.defaults),
                loaded_on=[w["id"] for w in workers if name in _loaded(w["device"])],
            )
        )
    return models


def _provider_names() -> tuple[list[str], dict[str, str]]:
    """Names from the provider registry, which loads no provider (and no torch) to list them."""
    try:
        from enchant_worker.providers.registry import ProviderRegistry
    except ImportError:
        return ["local"], {}
    registry = ProviderRegistry.default()
    return registry.names(), dict(registry.load_errors)


@router.get("/providers", response_model=list[ProviderPublic])
def list_providers(store: StoreDep, principal: PrincipalDep) -> list[ProviderPublic]:
    """Image providers (built in and plugins), with the live workers serving image generation."""
    names, errors = _provider_names()
    serving = [w["id"] for w in store.workers() if GENERATION_JOB_TYPE in w["job_types"]]
    return [
        ProviderPublic(name=n, load_error=errors.get(n), served_by=serving) for n in sorted({*names, *errors})
    ]
