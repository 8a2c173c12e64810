"""Providers by name; the built-in local provider plus plugins from the `enchant_worker.providers`
entry point group. A plugin that fails to load is logged and skipped: the worker keeps serving.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from enchant_worker.errors import ConfigurationError
from enchant_worker.providers.base import ImageProvider

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "enchant_worker.providers"
LOCAL_PROVIDER = "local"
# Imported by name, on first use: importing the registry must not import torch (the API lists providers).
BUILTIN_PROVIDERS = {LOCAL_PROVIDER: "enchant_worker.providers.local:LocalDiffusersProvider"}


class ProviderRegistry:
    """The seed's `providers` map. Factories are called lazily, with the registry's `options`."""

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = options or {}
        self._factories: dict[str, Callable[..., ImageProvider]] = {}
        self._instances: dict[str, ImageProvider] = {}
        self.load_errors: dict[str, str] = {}
        self.roles: dict[str, str] = {}  # the seed's roles → provider names (configs/providers.toml)

    @classmethod
    def default(cls, options: dict[str, Any] | None = None, plugins: bool = True) -> ProviderRegistry:
        registry = cls(options)
        for name, target in BUILTIN_PROVIDERS.items():
            registry.register_factory(name, _lazy(target))
        if plugins:
            registry.load_entry_points()
        return registry

    def register(self, provider: ImageProvider) -> None:
        if not isinstance(provider, ImageProvider):
            raise ConfigurationError(f"provider {provider!r} does not implement the ImageProvider protocol")
        self._instances[provider.name] = provider
        self._factories.pop(provider.name, None)

    def register_factory(self, name: str, factory: Callable[..., ImageProvider]) -> None:
        self._factories[name] = factory
        self._instances.pop(name, None)

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> list[str]:
        """Register each entry point's provider class or factory; returns the names registered."""
        names = []
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            try:
                self.register_factory(ep.name, ep.load())
                names.append(ep.name)
            except Exception as exc:  # a broken plugin must not stop the worker
                self.load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("provider plugin %s failed to load: %s", ep.name, exc)
        return names

    def names(self) -> list[str]:
        return sorted({*self._factories, *self._instances})

    def get(self, name: str) -> ImageProvider:
        if name in self._instances:
            return self._instances[name]
        if name not in self._factories:
            raise ConfigurationError(
                f"provider: unknown provider {name!r}; known providers: {', '.join(self.names())}"
            )
        provider = self._factories[name](**self.options.get(name, {}))
        if not isinstance(provider, ImageProvider):
            raise ConfigurationError(f"provider {name!r} does not implement the ImageProvider protocol")
        self._instances[name] = provider
        return provider

    def created(self, name: str) -> ImageProvider | None:
        """The provider if it has been created already (nothing is built here)."""
        return self._instances.get(name)

    def available(self) -> list[ImageProvider]:
        """Providers that can take work now (a provider that fails to start counts as unavailable)."""
        found = []
        for name in self.names():
            try:
                provider = self.get(name)
                if provider.is_available():
                    found.append(provider)
            except Exception as exc:
                self.load_errors[name] = f"{type(exc).__name__}: {exc}"
        return found


def _lazy(target: str) -> Callable[..., ImageProvider]:
    def factory(**options: Any) -> ImageProvider:
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)(**options)

    return factory
