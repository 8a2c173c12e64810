"""The seed's `selectOptimalProvider`: scene content, style preference, subscription tier, provider
availability and cost, among the registered providers, with the local provider as the default.

The seed names hosted providers (midjourney for romantic scenes in an artistic style, stability as
the most cost-effective); here those become rules over capabilities and cost, so they hold for
whatever providers are registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from enchant_worker.providers.base import CAP_ARTISTIC, ImageProvider
from enchant_worker.providers.registry import LOCAL_PROVIDER, ProviderRegistry


@dataclass(frozen=True)
class SceneTraits:
    emotional_tone: str | None = None


@dataclass(frozen=True)
class UserPreferences:
    style_preference: str | None = None
    subscription_tier: str = "free"
    preferred_provider: str | None = None


@dataclass(frozen=True)
class Selection:
    provider: ImageProvider
    reason: str


def select_optimal_provider(
    registry: ProviderRegistry, scene: SceneTraits, prefs: UserPreferences
) -> Selection:
    """The provider for a scene, and why. Rules in the seed's order; only available providers count."""
    available = {p.name: p for p in registry.available()}
    if not available:
        raise LookupError("no image provider is available")

    # 0. An explicit preference wins when that provider is available
    if prefs.preferred_provider in available:
        return Selection(available[prefs.preferred_provider], "the user's preferred provider")

    # 1. Romantic scene in an artistic style: a provider declaring the artistic capability
    if scene.emotional_tone == "romantic" and prefs.style_preference == "artistic":
        artistic = [p for p in available.values() if CAP_ARTISTIC in p.capabilities]
        if artistic and (prefs.subscription_tier != "free" or min(p.cost_per_image for p in artistic) == 0):
            return Selection(_cheapest(artistic), "romantic scene, artistic style: an artistic provider")

    # 2. Free tier: the most cost-effective provider (the local one when it is free)
    if prefs.subscription_tier == "free":
        return Selection(_cheapest(list(available.values())), "free tier: the most cost-effective provider")

    # 3. Default: the local provider, else the cheapest available one
    if LOCAL_PROVIDER in available:
        return Selection(available[LOCAL_PROVIDER], "default: the local provider")
    return Selection(_cheapest(list(available.values())), "default: the cheapest available provider")


def _cheapest(providers: list[ImageProvider]) -> ImageProvider:
    # Ties go to the local provider, then by name: the choice is deterministic.
    return min(providers, key=lambda p: (p.cost_per_image, p.name != LOCAL_PROVIDER, p.name))
