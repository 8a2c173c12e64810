"""`configs/providers.toml` (ENCHANT_PROVIDERS_FILE): remote providers by name, and the seed's roles
(`stability`: the most cost-effective, `midjourney`: artistic, `dalle`, `custom`) mapped to configured
providers. Read and checked when a worker starts (`check_providers`), so a missing secret or a role that
names nothing stops it at once, not at the first job.

    [providers.studio]            # any name
    type = "a1111"                # or "openai"
    url = "http://gpu-box:7860"
    api_key_env = "STUDIO_KEY"    # the key's environment variable (never the key itself)
    model = "sd15"                # optional
    cost_per_image = 0.002        # in the operator's currency
    timeout_s = 120               # optional: retries, backoff_s, max_response_bytes, capabilities

    [roles]
    stability = "local"
    midjourney = "studio"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enchant_worker.errors import ConfigurationError

if TYPE_CHECKING:
    from enchant_worker.config import Settings

ROLES = ("stability", "midjourney", "dalle", "custom")
LOCAL = "local"


@dataclass(frozen=True)
class ProvidersConfig:
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → settings (with `type`)
    roles: dict[str, str] = field(default_factory=lambda: {r: LOCAL for r in ROLES})


def load_providers_config(path: Path | None) -> ProvidersConfig:
    if path is None or not Path(path).is_file():
        return ProvidersConfig()
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc
    from enchant_worker.providers.remote import REMOTE_TYPES

    providers = {}
    for name, entry in (data.get("providers") or {}).items():
        if name == LOCAL:
            raise ConfigurationError(f"{path} [providers.{name}]: 'local' is the built-in provider's name")
        kind = entry.get("type")
        if kind not in REMOTE_TYPES:
            raise ConfigurationError(
                f"{path} [providers.{name}]: type must be one of {', '.join(REMOTE_TYPES)}, not {kind!r}"
            )
        if not str(entry.get("url", "")).startswith(("http://", "https://")):
            raise ConfigurationError(f"{path} [providers.{name}]: url must be an http(s) URL")
        providers[name] = dict(entry)
    roles = {r: LOCAL for r in ROLES}
    for role, target in (data.get("roles") or {}).items():
        if role not in ROLES:
            raise ConfigurationError(f"{path} [roles]: unknown role {role!r}; roles: {', '.join(ROLES)}")
        if target != LOCAL and target not in providers:
            raise ConfigurationError(
                f"{path} [roles]: {role} = {target!r} names no provider; configured: "
                f"{', '.join([LOCAL, *providers])}"
            )
        roles[role] = target
    return ProvidersConfig(providers, roles)


def build_remote(config: ProvidersConfig) -> list[Any]:
    """The configured remote providers (each reads its secret from the environment now)."""
    from enchant_worker.providers.remote import REMOTE_TYPES

    out = []
    for name, entry in config.providers.items():
        options = {k: v for k, v in entry.items() if k != "type"}
        out.append(REMOTE_TYPES[entry["type"]](name=name, **options))
    return out


def check_providers(settings: Settings) -> ProvidersConfig:
    """At a worker's start: the file parses, roles name providers, every secret is set."""
    config = load_providers_config(settings.providers_path)
    build_remote(config)
    return config
