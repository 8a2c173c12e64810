"""The llm analyzer's pure parts: the scene schema, the token budget, chunking, merging (no model)."""

from __future__ import annotations

import json

from enchant_worker.text.analysis import EmotionReading, SceneAnalysis
from enchant_worker.text.llm import _chunks, merge_answers, scene_schema, token_budget


class WordTokenizer:
    """A stand-in tokenizer: one token per word."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}

    def decode(self, ids):
        return " ".join(ids)


def test_schema_names_only_the_scene_characters_and_the_fields():
    fields = [
        {"name": "cloak", "type": "text", "applies_to": ["characters"]},
        {"name": "weather", "type": "text", "applies_to": ["scenes"]},
        {"name": "age", "type": "number", "applies_to": ["characters"]},
    ]
    schema = scene_schema(["Mara", "Tobin"], fields)
    item = schema["properties"]["characters"]["items"]
    assert item["properties"]["name"]["enum"] == ["Mara", "Tobin"]
    assert schema["properties"]["characters"]["minItems"] == 2
    assert list(item["properties"]["custom_fields"]["properties"]) == ["cloak"]  # numbers are not asked
    assert list(schema["properties"]["custom_fields"]["properties"]) == ["weather"]
    assert scene_schema([])["properties"]["characters"] == {"type": "array", "maxItems": 0}
    # the budget covers the longest answer the schema allows
    longest = {
        "summary": "x" * 120,
        "emotional_tone": "determination",
        "characters": [
            {
                "name": "Tobin",
                "emotion": "determination",
                "intensity": "medium",
                "custom_fields": {"cloak": "y" * 40},
            }
        ]
        * 2,
        "custom_fields": {"weather": "z" * 40},
    }
    assert token_budget(schema) > 2 * len(json.dumps(longest))


def test_long_scenes_are_cut_at_paragraphs_then_tokens():
    text = "\n\n".join(["one two three four"] * 5)
    assert _chunks(WordTokenizer(), text, 100) == [text]
    pieces = _chunks(WordTokenizer(), text, 9)
    assert all(len(p.split()) <= 9 for p in pieces) and sum(len(p.split()) for p in pieces) == 20
    assert _chunks(WordTokenizer(), " ".join(["w"] * 25), 10) == [" ".join(["w"] * 10)] * 2 + [
        " ".join(["w"] * 5)
    ]


def test_answers_merge_over_builtin_reading():
    scene = SceneAnalysis(
        1,
        0,
        10,
        "text",
        "t",
        "builtin summary",
        "neutral",
        None,
        ["Mara", "Tobin"],
        [EmotionReading("Mara", "fear", 0.5, {}, ["the storm"], "pale", None)],
    )
    merge_answers(
        scene,
        [
            {
                "summary": "Mara  climbs",
                "emotional_tone": "ominous",
                "characters": [
                    {
                        "name": "Mara",
                        "emotion": "fear",
                        "intensity": "high",
                        "custom_fields": {"cloak": "red"},
                    },
                    {"name": "Ghost", "emotion": "joy", "intensity": "low"},
                ],
                "custom_fields": {"weather": "storm"},
            },
            {
                "summary": "later",
                "emotional_tone": "calm",
                "characters": [{"name": "Tobin", "emotion": "joy", "intensity": "low"}],
            },
        ],
    )
    assert scene.summary == "Mara climbs" and scene.emotional_tone == "ominous"
    readings = {e.character: e for e in scene.emotions}
    assert readings["Mara"].intensity == 0.85 and readings["Mara"].triggers == [
        "the storm"
    ]  # builtin's notes kept
    assert readings["Tobin"].primary_emotion == "joy" and "Ghost" not in readings  # names only of the scene
    assert scene.custom_values == {"characters": {"Mara": {"cloak": "red"}}, "scene": {"weather": "storm"}}
