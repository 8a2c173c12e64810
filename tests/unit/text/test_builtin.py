"""The builtin analyzer: scene breaks, names and aliases, places, emotions (deterministic, no model)."""

from __future__ import annotations

from pathlib import Path

from enchant_worker.text.analysis import KnownCharacter, ProcessingOptions
from enchant_worker.text.builtin import BuiltinAnalyzer
from enchant_worker.text.ingest import read_file
from enchant_worker.text.registry import AnalyzerRegistry, default_analyzers

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "the-lamp-at-marrow-point.md"
analyzer = BuiltinAnalyzer()


def _chapters():
    return read_file(SAMPLE).chapters


def test_explicit_and_time_breaks():
    one, two, _ = _chapters()
    first = analyzer.analyze_chapter(one.text)
    assert [s.break_kind for s in first.scenes] == ["start", "explicit"]
    assert "* * *" not in "".join(s.text for s in first.scenes)  # break lines belong to no scene
    second = analyzer.analyze_chapter(two.text)
    assert [s.break_kind for s in second.scenes] == ["start", "time"]
    assert second.scenes[1].text.startswith("Hours later")
    for scene in first.scenes + second.scenes:  # spans point into the chapter text
        assert scene.text == (one.text if scene in first.scenes else two.text)[scene.start : scene.end]


def test_characters_aliases_titles_and_nicknames_merge():
    one, two, _ = _chapters()
    first = analyzer.analyze_chapter(one.text)
    names = {c.name: c for c in first.characters}
    assert set(names) == {"Elena Marsh", "Tobin", "Abel Reyes", "Will Hartley"}
    assert {"Elena", "Mrs. Marsh"} <= set(names["Elena Marsh"].aliases)
    assert {"Captain Reyes", "Reyes"} <= set(names["Abel Reyes"].aliases)
    assert "Will" in names["Will Hartley"].aliases
    assert names["Elena Marsh"].appearance == "a tall woman with a grey braid and an oilskin coat"
    second = analyzer.analyze_chapter(
        two.text,
        ProcessingOptions(
            known_characters=[KnownCharacter(c.name, tuple(c.aliases)) for c in first.characters]
        ),
    )
    peg = next(c for c in second.characters if c.name == "Margaret Hale")
    assert "Peg" in peg.aliases  # "Margaret Hale, whom everyone called Peg"
    assert second.scenes[0].characters == [
        "Elena Marsh",
        "Abel Reyes",
    ]  # "Elena" alone is the known Elena Marsh


def test_a_name_that_is_a_common_word():
    text = (
        "Will you come with me, she asked. Hope was all she had left, and she held on to it.\n\n"
        '"Not tonight," said Will. Later Will walked to the harbour with Hope Tanner, who smiled.\n\n'
        '"I will," said Hope. She hoped the boat would wait.'
    )
    result = analyzer.analyze_chapter(text)
    names = {c.name for c in result.characters}
    assert "Will" in names and "Hope Tanner" in names
    scene = result.scenes[0]
    hope = next(c for c in result.characters if c.name == "Hope Tanner")
    assert "Hope" in hope.aliases
    # "Will you come" and "Hope was all she had" are not mentions; "hoped" is an emotion, not Hope
    assert analyzer.analyze_chapter("Will you come? Hope is a thing with feathers.").characters == []
    assert scene.emotional_tone in ("joyful", "hopeful")


def test_locations_and_emotions_with_intensity_notes_and_triggers():
    _, _, three = _chapters()
    result = analyzer.analyze_chapter(
        three.text,
        ProcessingOptions(
            known_characters=[
                KnownCharacter("Elena Marsh", ("Elena",)),
                KnownCharacter("Margaret Hale", ("Peg",)),
                KnownCharacter("Abel Reyes", ("Captain Reyes", "Reyes")),
            ]
        ),
    )
    first, second = result.scenes
    emotions = {e.character: e for e in first.emotions}
    assert emotions["Elena Marsh"].primary_emotion == "sadness"
    assert emotions["Margaret Hale"].primary_emotion == "anger" and emotions["Margaret Hale"].intensity > 0.7
    assert emotions["Margaret Hale"].body_language_notes == "she slammed her fist on the table"
    assert emotions["Elena Marsh"].facial_expression_notes == "her face went pale"
    assert second.location == "the lighthouse" and second.emotional_tone == "hopeful"
    assert {e.character: e.primary_emotion for e in second.emotions} == {"Elena Marsh": "hope"}
    trigger = analyzer.analyze_chapter("Anna screamed in terror at the sight of the drowned man. Anna ran.")
    assert trigger.scenes[0].emotions[0].triggers == ["the drowned man"]


def test_a_chapter_without_breaks_is_one_scene_and_one_line_is_one_scene():
    text = " ".join(["Mara walked along the shore and thought about the sea."] * 400)
    assert len(analyzer.analyze_chapter(text).scenes) == 1
    result = analyzer.analyze_chapter("Mara smiled.")
    assert len(result.scenes) == 1 and result.scenes[0].text == "Mara smiled."
    assert analyzer.analyze_chapter("").scenes == []


def test_deterministic():
    text = _chapters()[0].text
    assert analyzer.analyze_chapter(text).to_dict() == analyzer.analyze_chapter(text).to_dict()


def test_process_scene_is_the_seed_interface():
    scene = analyzer.process_scene("Captain Reyes glared at the sea, furious. Reyes shouted at the crew.")
    assert scene.characters == ["Reyes"] and scene.emotions[0].primary_emotion == "anger"


def test_registry_names_and_clear_errors():
    import pytest

    from enchant_worker.text.errors import AnalyzerUnavailable

    registry = default_analyzers(plugins=False)
    assert registry.get(None).name == "builtin"
    with pytest.raises(AnalyzerUnavailable, match="unknown text analyzer 'gpt9'; available: builtin"):
        registry.get("gpt9")
    with pytest.raises(AnalyzerUnavailable, match="llm analyzer needs a text model"):
        registry.get("llm")
    with pytest.raises(TypeError):
        AnalyzerRegistry().register(object())
