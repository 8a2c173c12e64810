"""`llm`: a local causal language model (transformers) analyses each scene; its output is constrained
to the scene's JSON schema by lm-format-enforcer (grammar-constrained decoding), so even a weak or random
model returns JSON that parses.

1. Scenes, names and places come from `builtin` (deterministic segmentation and alias merging).
2. For each scene the model is asked, through its chat template, for a summary, the tone, each present
   character's emotion, and the story's custom fields; names can only be the scene's characters and
   emotions only the project's vocabulary (enums in the schema). A scene longer than the context window
   is cut into chunks, analysed one by one and merged (first summary; strongest emotion per character).
3. What the model says replaces builtin's reading; where its output is unusable (cut at the token limit),
   builtin's stays and the notes say so.

Models: an entry of configs/models.toml with `kind = "text"` (a transformers folder); `tiny-text` is built
locally on first use. Loaded once per process and kept resident (GPU when present). transformers and
torch are imported only here, lazily.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enchant_worker.text import lexicon as lx
from enchant_worker.text.analysis import ChapterAnalysis, EmotionReading, ProcessingOptions, SceneAnalysis
from enchant_worker.text.builtin import BuiltinAnalyzer
from enchant_worker.text.errors import AnalyzerUnavailable
from enchant_worker.text.models import TextModelSpec, check_text_model
from enchant_worker.text.tiny_lm import build_tiny_text_model

NAME = "llm"
MAX_NEW_TOKENS = 700  # the least a scene gets; `token_budget` adds room for each character and field
MAX_WHITESPACE = 1  # consecutive whitespace characters the JSON may hold (a weak model pads with them)
SUMMARY_MAX_CHARS = 120
TEXT_VALUE_MAX_CHARS = 40
MAX_CHARACTERS = 8
PROMPT_RESERVE_TOKENS = 400  # instructions and the answer's description around the scene text
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
INTENSITY = {"low": 0.25, "medium": 0.55, "high": 0.85}
SYSTEM = (
    "You read a scene of a novel and answer with JSON only: a one-sentence visual summary, the "
    "scene's emotional tone, and for each character present their dominant emotion and its intensity."
)


@dataclass
class _Loaded:
    tokenizer: Any
    model: Any
    tokenizer_data: Any
    device: str
    context: int


@dataclass
class LlmStats:
    tokens: int = 0
    seconds: float = 0.0
    outputs: int = 0
    valid: int = 0
    notes: list[str] = field(default_factory=list)


_resident: dict[Path, _Loaded] = {}
_lock = threading.Lock()


class LlmAnalyzer:
    name = NAME
    version = "1"
    capabilities: tuple[str, ...] = (
        "scene_segmentation",
        "characters",
        "aliases",
        "locations",
        "emotions",
        "summaries",
        "custom_fields",
    )

    def __init__(self, spec: TextModelSpec, device: str = "auto"):
        self.spec = spec
        self.device = device
        self.builtin = BuiltinAnalyzer()
        self.stats = LlmStats()

    # -- the provider interface ------------------------------------------------------------------

    def analyze_chapter(self, text: str, options: ProcessingOptions | None = None) -> ChapterAnalysis:
        options = options or ProcessingOptions()
        result = self.builtin.analyze_chapter(text, options)  # 1. scenes, names, places
        loaded = self._load()
        for scene in result.scenes:  # 2-3. the model's reading of each scene
            self._analyse_scene(loaded, scene, options, result.notes)
        result.analyzer = NAME
        return result

    def process_scene(self, text: str, options: ProcessingOptions | None = None) -> SceneAnalysis:
        options = options or ProcessingOptions()
        scene = self.builtin.process_scene(text, options)
        self._analyse_scene(self._load(), scene, options, [])
        return scene

    # -- loading ---------------------------------------------------------------------------------

    def _load(self) -> _Loaded:
        with _lock:
            if self.spec.path in _resident:
                return _resident[self.spec.path]
            if self.spec.builtin and not (self.spec.path / "config.json").is_file():
                build_tiny_text_model(self.spec.path)
            check_text_model(self.spec)
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = (
                self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            )
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.spec.path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(self.spec.path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise AnalyzerUnavailable(
                    f"text model {self.spec.name!r} cannot be loaded from {self.spec.path}: {exc}"
                ) from None
            model.to(device).eval()  # type: ignore[arg-type]
            context = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
            loaded = _Loaded(tokenizer, model, enforcer_tokenizer_data(tokenizer), device, context)
            _resident[self.spec.path] = loaded
            return loaded

    # -- one scene -------------------------------------------------------------------------------

    def _analyse_scene(
        self, loaded: _Loaded, scene: SceneAnalysis, options: ProcessingOptions, notes: list[str]
    ) -> None:
        schema = scene_schema(scene.characters, options.custom_fields)
        budget = max(64, loaded.context - token_budget(schema) - PROMPT_RESERVE_TOKENS)
        answers = []
        for chunk in _chunks(loaded.tokenizer, scene.text, budget):
            answer = self._generate(loaded, chunk, schema)
            if answer is None:
                notes.append(
                    f"scene {scene.number}: the model's output was cut at {token_budget(schema)} tokens; "
                    "builtin's reading kept for that part"
                )
            else:
                answers.append(answer)
        if answers:
            merge_answers(scene, answers)

    def _generate(self, loaded: _Loaded, text: str, schema: dict) -> dict | None:
        return json_completion(self, loaded, SYSTEM, f"{_describe(schema)}\n\nScene:\n{text}", schema)


def json_completion(
    analyzer: LlmAnalyzer, loaded: _Loaded, system: str, user: str, schema: dict
) -> dict | None:
    """The model's answer to a chat (system, user) as a JSON object of `schema` (constrained decoding), or
    None when it is cut at the token limit. Counts tokens and time in `analyzer.stats`."""
    import torch
    from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser
    from lmformatenforcer.tokenenforcer import TokenEnforcer

    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    prompt = loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(loaded.device)
    config = CharacterLevelParserConfig(
        max_consecutive_whitespaces=MAX_WHITESPACE, force_json_field_order=True
    )
    enforcer = TokenEnforcer(loaded.tokenizer_data, JsonSchemaParser(schema, config=config))

    def allowed(batch_id: int, sequence) -> list[int]:
        return enforcer.get_allowed_tokens(sequence.tolist()).allowed_tokens

    room = loaded.context - int(inputs["input_ids"].shape[1])
    started = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(
            **inputs,
            max_new_tokens=max(1, min(token_budget(schema), room)),
            do_sample=False,
            prefix_allowed_tokens_fn=allowed,
            pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
        )
    new = out[0, inputs["input_ids"].shape[1] :]
    analyzer.stats.seconds += time.perf_counter() - started
    analyzer.stats.tokens += int(new.shape[0])
    analyzer.stats.outputs += 1
    try:
        # strict=False: control characters inside strings are legal output of the grammar; cleaned below
        answer = _clean(json.loads(loaded.tokenizer.decode(new, skip_special_tokens=True), strict=False))
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    analyzer.stats.valid += 1
    return answer


def enforcer_tokenizer_data(tokenizer):
    """lm-format-enforcer's view of a tokenizer: each token's text, and whether it starts a word. (Built
    here from its core: its transformers integration does not import under transformers 5.)"""
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    regular = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        after_zero = tokenizer.decode([zero, token])[1:]  # keeps a leading space a lone decode drops
        if "\ufffd" in after_zero:
            continue  # a piece of a multi-byte character: adds no character the parser can count
        regular.append((token, after_zero, len(after_zero) > len(tokenizer.decode([token]))))

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, False, len(tokenizer))


def _describe(schema: dict[str, Any]) -> str:
    """The answer's shape in a few words (the constraint enforces the details)."""
    props = schema["properties"]
    names = props["characters"].get("items", {}).get("properties", {}).get("name", {}).get("enum", [])
    parts = [
        "Answer with a JSON object: summary (one sentence), emotional_tone "
        f"({', '.join(props['emotional_tone']['enum'])})"
    ]
    if names:
        parts.append(
            f"characters: for each of {', '.join(names)}: name, emotion "
            f"({', '.join(lx.EMOTION_CUES)}), intensity (low, medium, high)"
        )
    if "custom_fields" in props:
        parts.append(f"custom_fields: {', '.join(props['custom_fields']['properties'])}")
    return "; ".join(parts) + "."


def token_budget(schema: dict[str, Any]) -> int:
    """Enough new tokens for the longest JSON the schema allows (every character one token at worst, a
    whitespace between any two), so a constrained answer is never cut before it closes."""
    return max(MAX_NEW_TOKENS, 2 * _max_chars(schema) + 64)


def _max_chars(schema: dict[str, Any]) -> int:
    if "enum" in schema:
        return max((len(json.dumps(v)) for v in schema["enum"]), default=4)
    kind = schema.get("type")
    if kind == "string":
        return 2 + 6 * int(schema.get("maxLength", 200))  # an escaped character is up to 6 (\\uXXXX)
    if kind == "boolean":
        return 5
    if kind == "array":
        return 2 + int(schema.get("maxItems", 0)) * (1 + _max_chars(schema.get("items", {})))
    if kind == "object":
        props = schema.get("properties", {})
        return 2 + sum(len(json.dumps(k)) + 2 + _max_chars(v) for k, v in props.items())
    return 20


def _clean(value: Any) -> Any:
    """Strings without control characters and with single spaces, recursively."""
    if isinstance(value, str):
        return " ".join(_CONTROL.sub(" ", value).split())
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _field_schemas(custom_fields, applies_to: str) -> dict[str, Any] | None:
    """The custom fields of one kind of entity as JSON Schema properties (json and number fields are not
    asked: free JSON and unbounded numbers would let a weak model run on)."""
    fields = {}
    for custom in custom_fields:
        if applies_to not in custom.get("applies_to", ()):
            continue
        kind = custom.get("type")
        if kind == "text":
            fields[custom["name"]] = {"type": "string", "maxLength": TEXT_VALUE_MAX_CHARS}
        elif kind == "boolean":
            fields[custom["name"]] = {"type": "boolean"}
        elif kind == "array":
            fields[custom["name"]] = {
                "type": "array",
                "maxItems": 3,
                "items": {"type": "string", "maxLength": TEXT_VALUE_MAX_CHARS},
            }
    if not fields:
        return None
    return {"type": "object", "properties": fields, "required": sorted(fields), "additionalProperties": False}


def scene_schema(characters: list[str], custom_fields=()) -> dict[str, Any]:
    """The JSON the model must produce for a scene: one entry per present character (names and emotions
    only from the given lists), and the story's custom fields of scenes and characters."""
    item: dict[str, Any] = {
        "name": {"type": "string", "enum": list(characters)},
        "emotion": {"type": "string", "enum": list(lx.EMOTION_CUES)},
        "intensity": {"type": "string", "enum": list(INTENSITY)},
    }
    character_fields = _field_schemas(custom_fields, "characters")
    if character_fields:
        item["custom_fields"] = character_fields
    count = min(MAX_CHARACTERS, len(characters))
    properties: dict[str, Any] = {
        "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX_CHARS},
        "emotional_tone": {"type": "string", "enum": sorted({*lx.TONES.values(), lx.NEUTRAL_TONE})},
        "characters": {
            "type": "array",
            "minItems": count,
            "maxItems": count,
            "items": {
                "type": "object",
                "properties": item,
                "required": list(item),
                "additionalProperties": False,
            },
        }
        if characters
        else {"type": "array", "maxItems": 0},
    }
    scene_fields = _field_schemas(custom_fields, "scenes")
    if scene_fields:
        properties["custom_fields"] = scene_fields
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def merge_answers(scene: SceneAnalysis, answers: list[dict]) -> None:
    """The model's answers for a scene's chunks, over builtin's reading of it."""
    first = answers[0]
    if str(first.get("summary", "")).strip():
        scene.summary = " ".join(str(first["summary"]).split())
    if first.get("emotional_tone"):
        scene.emotional_tone = first["emotional_tone"]
    readings: dict[str, EmotionReading] = {}
    for answer in answers:
        for item in answer.get("characters") or []:
            name, emotion = item.get("name"), item.get("emotion")
            if name not in scene.characters or emotion not in lx.EMOTION_CUES:
                continue
            if isinstance(item.get("custom_fields"), dict) and item["custom_fields"]:
                scene.custom_values.setdefault("characters", {}).setdefault(name, dict(item["custom_fields"]))
            intensity = INTENSITY.get(item.get("intensity"), 0.5)
            old = readings.get(name)
            if old is None or intensity > old.intensity:
                builtin = next((e for e in scene.emotions if e.character == name), None)
                readings[name] = EmotionReading(
                    name,
                    emotion,
                    intensity,
                    {},
                    builtin.triggers if builtin else [],
                    builtin.facial_expression_notes if builtin else None,
                    builtin.body_language_notes if builtin else None,
                )
    if readings:
        scene.emotions = [readings[n] for n in scene.characters if n in readings]
    values = first.get("custom_fields")
    if isinstance(values, dict) and values:
        scene.custom_values["scene"] = dict(values)


def _chunks(tokenizer, text: str, budget_tokens: int) -> list[str]:
    """The text cut at paragraph (else sentence) ends into pieces of at most `budget_tokens` tokens."""
    if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget_tokens:
        return [text]
    pieces, current = [], ""
    for paragraph in text.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if current and len(tokenizer(candidate, add_special_tokens=False)["input_ids"]) > budget_tokens:
            pieces.append(current)
            current = paragraph
        else:
            current = candidate
    if current:
        pieces.append(current)
    out = []
    for piece in pieces:  # a paragraph alone may still be too long: cut by tokens
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        out += [tokenizer.decode(ids[i : i + budget_tokens]) for i in range(0, len(ids), budget_tokens)]
    return out


_analyzers: dict[str, LlmAnalyzer] = {}


def llm_analyzer(settings, text_model: str | None) -> LlmAnalyzer:
    """The llm analyzer for a text model, one per model and process (the model stays resident)."""
    from enchant_worker.text.models import resolve_text_model

    spec = resolve_text_model(Path(settings.models_dir), Path(settings.models_config), text_model)
    if spec.name not in _analyzers:
        _analyzers[spec.name] = LlmAnalyzer(spec, device=getattr(settings, "device", "auto"))
    return _analyzers[spec.name]
