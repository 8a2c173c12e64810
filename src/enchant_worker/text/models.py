"""Text models of configs/models.toml (`kind = "text"`): where they are and whether they are causal
language models, read without torch (the API and the CLI check a job's model at enqueue)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from enchant_worker.text.errors import AnalyzerUnavailable

TINY_TEXT_NAME = "tiny-text"  # built locally on first use (text.tiny_lm)


@dataclass(frozen=True)
class TextModelSpec:
    name: str
    path: Path
    builtin: bool = False


def text_models(models_dir: Path, config_file: Path | None) -> dict[str, TextModelSpec]:
    """The text models of configs/models.toml (`kind = "text"`) and the built-in tiny one."""
    models = {TINY_TEXT_NAME: TextModelSpec(TINY_TEXT_NAME, Path(models_dir) / TINY_TEXT_NAME, True)}
    if config_file is not None and Path(config_file).is_file():
        with open(config_file, "rb") as f:
            data = tomllib.load(f)
        for name, entry in (data.get("models") or {}).items():
            if entry.get("kind") == "text":
                path = Path(entry["path"]).expanduser()
                models[name] = TextModelSpec(name, path if path.is_absolute() else Path(models_dir) / path)
    return models


def check_text_model(spec: TextModelSpec) -> None:
    """A clear error unless `spec` is a causal LM folder (read from its config.json: no torch needed)."""
    if spec.builtin and not spec.path.exists():
        return  # built on first use
    config = spec.path / "config.json"
    if not config.is_file():
        raise AnalyzerUnavailable(
            f"text model {spec.name!r}: no transformers model at {spec.path} (config.json "
            "missing); place the model folder there or fix its path in configs/models.toml"
        )
    try:
        architectures = json.loads(config.read_text()).get("architectures") or []
    except (OSError, ValueError) as exc:
        raise AnalyzerUnavailable(f"text model {spec.name!r}: {config} is unreadable ({exc})") from None
    if not any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in architectures):
        raise AnalyzerUnavailable(
            f"text model {spec.name!r} at {spec.path} is not a causal language model "
            f"(architectures: {', '.join(architectures) or 'none'}); the llm analyzer "
            "needs one (e.g. *ForCausalLM)"
        )


def resolve_text_model(models_dir: Path, config_file: Path | None, name: str | None) -> TextModelSpec:
    """The named text model (default: the config's `default_text`, else tiny-text), checked."""
    models = text_models(models_dir, config_file)
    if name is None and config_file is not None and Path(config_file).is_file():
        with open(config_file, "rb") as f:
            name = tomllib.load(f).get("default_text")
    name = name or TINY_TEXT_NAME
    if name not in models:
        raise AnalyzerUnavailable(
            f"text_model: unknown text model {name!r}; known: {', '.join(models)} "
            '(add it to configs/models.toml with kind = "text")'
        )
    check_text_model(models[name])
    return models[name]
