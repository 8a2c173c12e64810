"""PNG text chunks: AUTOMATIC1111's `parameters` (read by most SD tools) and our full spec as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

PARAMETERS_KEY = "parameters"  # AUTOMATIC1111's key
SPEC_KEY = "enchant"  # ours: the JSON job spec
NEGATIVE_PREFIX = "Negative prompt: "
_LORA_TAG = re.compile(r"\s*<lora:([^:>]+):([-0-9.]+)>")


@dataclass(frozen=True)
class ImageParameters:
    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    cfg_scale: float
    seed: int
    width: int
    height: int
    model: str
    model_hash: str | None = None
    loras: Sequence[tuple[str, float, str]] = field(default=())  # (name, strength, short hash)
    version: str | None = None


def _quote(value: str) -> str:
    """AUTOMATIC1111's `quote`: a value with ',', ':' or a newline as a JSON string."""
    return json.dumps(value, ensure_ascii=False) if ("," in value or ":" in value or "\n" in value) else value


def _hash_name(name: str) -> str:
    """A LoRA's name inside `Lora hashes` without ':' and ',' (as AUTOMATIC1111 writes it there)."""
    return name.replace(":", "").replace(",", "")


def format_parameters(p: ImageParameters) -> str:
    """The `parameters` text: prompt (with `<lora:name:weight>` tags), negative prompt, settings line."""
    prompt = p.prompt + "".join(f" <lora:{name}:{_weight(w)}>" for name, w, _ in p.loras)
    settings: list[tuple[str, str]] = [
        ("Steps", str(p.steps)),
        ("Sampler", p.sampler),
        ("CFG scale", _weight(p.cfg_scale)),
        ("Seed", str(p.seed)),
        ("Size", f"{p.width}x{p.height}"),
    ]
    if p.model_hash:
        settings.append(("Model hash", p.model_hash))
    settings.append(("Model", p.model))
    if p.loras:
        settings.append(
            ("Lora hashes", '"' + ", ".join(f"{_hash_name(name)}: {h}" for name, _, h in p.loras) + '"')
        )
    if p.version:
        settings.append(("Version", p.version))
    lines = [prompt]
    if p.negative_prompt:
        lines.append(NEGATIVE_PREFIX + p.negative_prompt)
    lines.append(", ".join(f"{k}: {v if k == 'Lora hashes' else _quote(v)}" for k, v in settings))
    return "\n".join(lines)


def _weight(value: float) -> str:
    return f"{float(value):g}"


def parse_parameters(text: str) -> dict[str, Any]:
    """Read a `parameters` text back (the inverse of `format_parameters`, and AUTOMATIC1111's output)."""
    lines = text.split("\n")
    settings_line = lines[-1]
    body = lines[:-1]
    negative_at = next((i for i, line in enumerate(body) if line.startswith(NEGATIVE_PREFIX)), None)
    prompt_lines = body if negative_at is None else body[:negative_at]
    negative = "" if negative_at is None else "\n".join(body[negative_at:])[len(NEGATIVE_PREFIX) :]
    prompt = "\n".join(prompt_lines)
    loras = [(m.group(1), float(m.group(2))) for m in _LORA_TAG.finditer(prompt)]
    settings = {
        k: v.strip('"')
        for k, v in re.findall(r'\s*([\w ]+):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)', settings_line)
    }
    result: dict[str, Any] = {
        "prompt": _LORA_TAG.sub("", prompt),
        "negative_prompt": negative,
        "loras": loras,
        **settings,
    }
    if "Lora hashes" in settings:
        result["Lora hashes"] = dict(item.split(": ", 1) for item in settings["Lora hashes"].split(", "))
    return result


def png_info(parameters: ImageParameters, spec: Mapping[str, Any]) -> PngInfo:
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, format_parameters(parameters))  # tEXt, or iTXt when not Latin-1
    info.add_text(SPEC_KEY, json.dumps(spec, sort_keys=True, default=str))
    return info


def png_bytes(image: Image.Image, parameters: ImageParameters, spec: Mapping[str, Any]) -> bytes:
    """The PNG file of `image` with both chunks, in memory (to hash it before choosing its path)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(parameters, spec))
    return buffer.getvalue()


def save_png(image: Image.Image, path: Path, parameters: ImageParameters, spec: Mapping[str, Any]) -> Path:
    """Write `image` to `path` with both chunks; written to a temporary name first, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    image.save(partial, format="PNG", pnginfo=png_info(parameters, spec))
    partial.replace(path)
    return path


def read_png_metadata(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed `parameters` chunk and the JSON spec of a PNG written by `save_png`."""
    with Image.open(path) as image:
        text = image.text  # type: ignore[attr-defined]
        return parse_parameters(text[PARAMETERS_KEY]), json.loads(text[SPEC_KEY])
