"""Image providers (the seed's ImageGenerationProvider): the protocol, the registry with entry-point
plugins, the built-in local diffusers provider, and provider selection.

Importing this package does not import torch: the local provider loads on first use.
"""

from enchant_worker.providers.base import (
    GenerationRequest,
    GenerationResult,
    ImageProvider,
    ModelInfo,
    ValidationResult,
)
from enchant_worker.providers.registry import ProviderRegistry
from enchant_worker.providers.selection import SceneTraits, UserPreferences, select_optimal_provider

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "ImageProvider",
    "ModelInfo",
    "ProviderRegistry",
    "SceneTraits",
    "UserPreferences",
    "ValidationResult",
    "select_optimal_provider",
]
