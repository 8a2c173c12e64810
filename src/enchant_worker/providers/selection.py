"""The seed's `selectOptimalProvider`, in the seed's order:

1. a romantic scene for a user whose style preference is artistic → the `midjourney` role,
2. a free-tier user → the `stability` role (the most cost-effective),
3. anyone else → the `stability` role (the default).

Roles map to configured providers in `configs/providers.toml` (all `local` unless configured). When the
chosen provider is down, the cheapest available one takes the job (ties: local, then by name), and the
reason says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from enchant_worker.providers.base import ImageProvider
from enchant_worker.providers.registry import LOCAL_PROVIDER, ProviderRegistry

DEFAULT_ROLES = {
    "stability": LOCAL_PROVIDER,
    "midjourney": LOCAL_PROVIDER,
    "dalle": LOCAL_PROVIDER,
    "custom": LOCAL_PROVIDER,
}


@dataclass(frozen=True)
class SceneTraits:
    emotional_tone: str | None = None


@dataclass(frozen=True)
class UserPreferences:
    style_preference: str | None = None
    subscription_tier: str = "free"


@dataclass(frozen=True)
class Selection:
    provider: ImageProvider
    reason: str
    role: str | None = None


def seed_role(scene: SceneTraits, prefs: UserPreferences) -> tuple[str, str]:
    """The seed's rule that applies: (role, why)."""
    if scene.emotional_tone == "romantic" and prefs.style_preference == "artistic":
        return "midjourney", "romantic scene, artistic style"
    if prefs.subscription_tier == "free":
        return "stability", "free tier: the most cost-effective"
    return "stability", "default"


def select_optimal_provider(
    registry: ProviderRegistry,
    scene: SceneTraits,
    prefs: UserPreferences,
    roles: Mapping[str, str] | None = None,
) -> Selection:
    """The provider for a scene and why: the seed's rule, its role's provider, else a fallback."""
    roles = {**DEFAULT_ROLES, **(roles if roles is not None else getattr(registry, "roles", {}))}
    role, why = seed_role(scene, prefs)
    wanted = roles[role]
    try:
        provider = registry.get(wanted)
        if provider.is_available():
            return Selection(provider, f"{why}: the {role} role ({wanted})", role)
    except Exception as exc:
        registry.load_errors[wanted] = f"{type(exc).__name__}: {exc}"
    available = [p for p in registry.available() if p.name != wanted]
    if not available:
        raise LookupError(f"no image provider is available ({wanted}, the {role} role, is down)")
    fallback = _cheapest(available)
    return Selection(
        fallback, f"{why}: the {role} role's provider {wanted} is down; fell back to {fallback.name}", role
    )


def _cheapest(providers: list[ImageProvider]) -> ImageProvider:
    # Ties go to the local provider, then by name: the choice is deterministic.
    return min(providers, key=lambda p: (p.cost_per_image, p.name != LOCAL_PROVIDER, p.name))
