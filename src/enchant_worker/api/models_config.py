"""The base models of configs/models.toml, read without loading any of them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from enchant_worker.config import Settings
from enchant_worker.errors import ConfigurationError

MODELS_FILE = "models.toml"


def read_models(settings: Settings) -> dict[str, Any]:
    path = settings.configs_dir / MODELS_FILE
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {"models": {}}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc


def default_model(settings: Settings) -> str:
    config = read_models(settings)
    return config.get("default") or next(iter(config.get("models", {})), "tiny-sd")


def model_available(settings: Settings, spec: dict[str, Any]) -> bool:
    """Weights on disk, or a built-in model the worker builds on first use."""
    if spec.get("builtin"):
        return True
    path = Path(str(spec.get("path", "")))
    if not path.is_absolute():
        path = settings.models_dir / path
    return bool(spec.get("path")) and path.exists()
