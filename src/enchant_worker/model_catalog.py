"""Named base models from `configs/models.toml` (ENCHANT_MODELS_CONFIG): where their weights are, their
family, their defaults. Torch-free: the API, the CLI and the worker read the same file through it.

The tiny model is the default when no file or no default is configured; the worker builds it when missing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enchant_worker.errors import ConfigurationError, ModelNotFound

FAMILIES = ("sd15", "sdxl")
TINY_NAME = "tiny-sd"
# Native size of each family, for defaults when a model sets none.
NATIVE_SIZE_PX = {"sd15": 512, "sdxl": 1024}
GENERIC_DEFAULTS: dict[str, Any] = {"steps": 25, "cfg_scale": 7.0, "sampler": "Euler"}
TINY_RESOLUTION_PX = 64  # the tiny model's native size (here, not in tiny_model: that imports torch)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    family: str
    config: Path | None = None
    builtin: str | None = None
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def single_file(self) -> bool:
        return self.path.suffix == ".safetensors"

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "path": str(self.path),
            "format": "single_file" if self.single_file else "diffusers",
            "builtin": self.builtin,
            "description": self.description,
            "defaults": dict(self.defaults),
            "available": self.builtin is not None or self.path.exists(),
        }


def _tiny_spec(models_dir: Path) -> ModelSpec:
    return ModelSpec(
        name=TINY_NAME,
        path=models_dir / "tiny-sd",
        family="sd15",
        builtin="tiny",
        description="Tiny randomly initialised SD 1.5-shaped model",
        defaults={**GENERIC_DEFAULTS, "steps": 20, "width": TINY_RESOLUTION_PX, "height": TINY_RESOLUTION_PX},
    )


class ModelRegistry:
    """The configured base models. Read once; `get()` refuses unknown names with the known ones."""

    def __init__(self, models: dict[str, ModelSpec], default: str):
        if default not in models:
            raise ConfigurationError(
                f"default model {default!r} is not defined; defined: {', '.join(models)}"
            )
        self.models = models
        self.default = default

    @classmethod
    def load(cls, models_dir: Path, config_file: Path | None = None) -> ModelRegistry:
        """Read `config_file` (skipped when None or missing); the tiny model is always defined."""
        models_dir = Path(models_dir)
        models = {TINY_NAME: _tiny_spec(models_dir)}
        default = TINY_NAME
        if config_file is not None and Path(config_file).is_file():
            with open(config_file, "rb") as f:
                try:
                    data = tomllib.load(f)
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigurationError(f"{config_file}: {exc}") from exc
            for name, entry in (data.get("models") or {}).items():
                if entry.get("kind", "image") in ("text", "clip"):
                    continue  # a text model (text.models) or a CLIP scorer (clip_models), not a base model
                models[name] = _parse_entry(name, entry, models_dir, config_file)
            default = data.get("default", TINY_NAME)
        return cls(models, default)

    def get(self, name: str | None) -> ModelSpec:
        name = name or self.default
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(
                f"model: unknown model {name!r}; known models: {', '.join(self.models)}"
            ) from None

    def names(self) -> list[str]:
        return list(self.models)

    @classmethod
    def from_settings(cls, settings: Any) -> ModelRegistry:
        return cls.load(Path(settings.models_dir), Path(settings.models_config))


def _parse_entry(name: str, entry: dict[str, Any], models_dir: Path, source: Path) -> ModelSpec:
    where = f"{source} [models.{name}]"
    if "path" not in entry:
        raise ConfigurationError(f"{where}: 'path' is required")
    family = entry.get("family", "sd15")
    if family not in FAMILIES:
        raise ConfigurationError(f"{where}: family must be one of {', '.join(FAMILIES)}, not {family!r}")
    path = _resolve(models_dir, entry["path"])
    config = _resolve(models_dir, entry["config"]) if entry.get("config") else None
    builtin = entry.get("builtin")
    if builtin not in (None, "tiny"):
        raise ConfigurationError(f"{where}: builtin must be 'tiny' when set, not {builtin!r}")
    if path.suffix not in ("", ".safetensors"):
        raise ConfigurationError(
            f"{where}: path must be a diffusers folder or a .safetensors file (never pickle)"
        )
    if path.suffix == ".safetensors" and config is None:
        raise ConfigurationError(
            f"{where}: a single-file checkpoint needs 'config', a local diffusers folder with its configs"
        )
    native = NATIVE_SIZE_PX[family]
    defaults = {**GENERIC_DEFAULTS, "width": native, "height": native, **(entry.get("defaults") or {})}
    return ModelSpec(name, path, family, config, builtin, entry.get("description", ""), defaults)


def _resolve(models_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else models_dir / path


# -- CLIP models that score prompt alignment (generation.clip_alignment) --------------------------

CLIP_SUBFOLDER = "clip"  # a base model folder may carry its own full CLIP model (text + vision) here
CLIP_HOW = (
    'add a [models.NAME] entry with kind = "clip" (a local transformers CLIPModel folder) to '
    "configs/models.toml, or a clip/ folder with one inside the base model's folder"
)


@dataclass(frozen=True)
class ClipSpec:
    name: str
    path: Path
    builtin: str | None = None  # "tiny": a random CLIP built locally on first use (tests, demos)


def clip_models(models_dir: Path, config_file: Path | None) -> tuple[dict[str, ClipSpec], dict[str, Any]]:
    """The `kind = "clip"` entries of configs/models.toml, and the file's data (for `default_clip`
    and the base models' `clip = NAME`)."""
    if config_file is None or not Path(config_file).is_file():
        return {}, {}
    with open(config_file, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{config_file}: {exc}") from exc
    models = {}
    for name, entry in (data.get("models") or {}).items():
        if entry.get("kind") != "clip":
            continue
        if "path" not in entry or entry.get("builtin") not in (None, "tiny"):
            raise ConfigurationError(
                f"{config_file} [models.{name}]: a clip model needs 'path' (and builtin, "
                "when set, must be 'tiny')"
            )
        models[name] = ClipSpec(name, _resolve(Path(models_dir), entry["path"]), entry.get("builtin"))
    return models, data


def clip_for(
    models_dir: Path, config_file: Path | None, base_model: str | None
) -> tuple[ClipSpec | None, str]:
    """The CLIP model that scores images of `base_model`, and where it came from; or None and why.

    In order: the base model's `clip = NAME`, the file's `default_clip`, the only clip entry, the base
    model folder's clip/ subfolder (an SD pipeline has a CLIP text encoder but no vision tower)."""
    models, data = clip_models(models_dir, config_file)
    entries = data.get("models") or {}
    base_name = base_model or data.get("default") or TINY_NAME
    named = (entries.get(base_name) or {}).get("clip") or data.get("default_clip")
    if named:
        if named not in models:
            return None, (
                f"clip model {named!r} (named in configs/models.toml) is not defined; "
                f"defined: {', '.join(models) or 'none'}"
            )
        return _usable(models[named], f"configured for {base_name!r}")
    if len(models) == 1:
        return _usable(next(iter(models.values())), "the only clip model configured")
    if len(models) > 1:
        return None, f"several clip models ({', '.join(models)}) and none chosen: set default_clip"
    base_path = (entries.get(base_name) or {}).get("path")
    folder = _resolve(Path(models_dir), base_path) if base_path else None
    if folder is not None and (folder / CLIP_SUBFOLDER / "config.json").is_file():
        return ClipSpec(f"{base_name}/clip", folder / CLIP_SUBFOLDER), f"the clip/ folder of {base_name!r}"
    return None, f"no CLIP model (text and vision) for {base_name!r}: {CLIP_HOW}"


def _usable(spec: ClipSpec, source: str) -> tuple[ClipSpec | None, str]:
    if spec.builtin is None and not (spec.path / "config.json").is_file():
        return None, f"clip model {spec.name!r}: no transformers model at {spec.path} (config.json missing)"
    return spec, source


# -- checkpoint identity ("Model hash") -----------------------------------------------------------

MODEL_SHORT_HASH_CHARS = 10  # AUTOMATIC1111's short checkpoint hash: the first 10 hex digits of SHA-256
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")
_model_hash_cache: dict[tuple[str, int, int], str] = {}


def model_sha256(spec: ModelSpec) -> str | None:
    """The checkpoint's SHA-256 as AUTOMATIC1111 and Civitai compute it for a single file (the whole
    file). For a diffusers folder, a stable hash of our own: SHA-256 over each weight file's relative
    path and SHA-256, in sorted order (configs excluded, so re-saving a config changes nothing).
    None when the weights are not there (e.g. the tiny model before its first use). Cached by size
    and modification time."""
    path = spec.path
    if not path.exists():
        return None
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
        if not files:
            return None
    stat = [p.stat() for p in files]
    key = (str(path), sum(s.st_size for s in stat), max(s.st_mtime_ns for s in stat))
    if key in _model_hash_cache:
        return _model_hash_cache[key]
    if path.is_file():
        digest = _file_sha256(path)
    else:
        import hashlib

        outer = hashlib.sha256()
        for p in files:
            outer.update(f"{p.relative_to(path).as_posix()}\n{_file_sha256(p)}\n".encode())
        digest = outer.hexdigest()
    _model_hash_cache[key] = digest
    return digest


def model_short_hash(spec: ModelSpec) -> str | None:
    digest = model_sha256(spec)
    return digest[:MODEL_SHORT_HASH_CHARS] if digest else None


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
