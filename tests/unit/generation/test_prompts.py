import pytest

from enchant_worker.generation.errors import InvalidGeneration
from enchant_worker.generation.prompts import (
    BranchCharacterState,
    Character,
    CharacterEmotion,
    Location,
    LoraStyle,
    Preset,
    Scene,
    build_raw_prompt,
    build_scene_prompt,
    emotion_modifiers,
)
from enchant_worker.generation.styles import LoraModel, StoryLoraSetting, story_loras_for_scene


@pytest.mark.parametrize(
    ("emotion", "expected"),
    [
        (CharacterEmotion("joy", 0.9), ["joy expression", "intense", "dramatic facial expression"]),
        (CharacterEmotion("joy", 0.8), ["joy expression"]),  # > 0.8 strictly
        (CharacterEmotion("fear", 0.2), ["fear expression", "subtle", "nuanced expression"]),
        (CharacterEmotion("fear", 0.3), ["fear expression"]),  # < 0.3 strictly
        (CharacterEmotion("calm", None), ["calm expression"]),
        (
            CharacterEmotion(
                "anger", 0.5, {"sadness": 0.31, "fear": 0.3, "joy": 0.9}, "clenched jaw", "fists balled"
            ),
            ["anger expression", "hints of sadness", "hints of joy", "clenched jaw", "fists balled"],
        ),
        (CharacterEmotion("sad", 0.5, {}, "", None), ["sad expression"]),
    ],
)
def test_emotion_modifiers_follow_the_seed_rules(emotion, expected):
    assert emotion_modifiers(emotion) == expected


def scene_with_branch():
    hero = Character(
        "Mara",
        appearance="young woman, red hair",
        emotion=CharacterEmotion("fear", 0.9, {"anger": 0.4}, "wide eyes", None, id="e1"),
        branch_state=BranchCharacterState("b1", 3, "young woman, shaved head, scar", "resolute", id="s1"),
        id="c1",
    )
    king = Character("Old King", appearance="old man, silver crown", id="c2")
    return Scene(
        id="sc1",
        text="ignored when a summary exists",
        summary="Mara confronts the king at night",
        characters=(hero, king),
        location=Location("Throne room", "dark hall, torches", id="l1"),
    )


def test_scene_prompt_exact_output_with_branch_emotions_preset_and_lora():
    built = build_scene_prompt(
        scene_with_branch(),
        preset=Preset("ink", ("ink illustration", "high contrast"), negative_prompt="photo, color", id="p1"),
        loras=(LoraStyle("inkstyle", ("inkdrw",), id="lo1"),),
    )
    assert built.prompt == (
        "inkdrw, Mara confronts the king at night, Mara, young woman, shaved head, scar, fear expression, intense, "
        "dramatic facial expression, hints of anger, wide eyes, Old King, old man, silver crown, Throne room, "
        "dark hall, torches, ink illustration, high contrast"
    )
    assert built.negative_prompt == "photo, color"
    sources = [p.source for p in built.parts]
    assert sources == [
        "lora_models:lo1.trigger_words",
        "scenes:sc1.summary",
        "branch_character_states:s1.appearance_description",
        *["character_emotions:e1"] * 5,
        "characters:c2.appearance",
        "locations:l1",
        "generation_presets:p1.style_modifiers",
        "generation_presets:p1.style_modifiers",
    ]
    assert built.explain()["negative_parts"] == [
        {"text": "photo, color", "source": "generation_presets:p1.negative_prompt"}
    ]


def test_branch_emotional_state_is_used_when_no_emotion_row():
    scene = Scene(
        id="s",
        text="A  quiet\n morning.",
        characters=(Character("Mara", branch_state=BranchCharacterState("b", 1, "tall", "hopeful", id="x")),),
    )
    built = build_scene_prompt(scene)
    assert built.prompt == "A quiet morning., Mara, tall, hopeful"
    assert built.negative_prompt == "blurry, low quality, worst quality, text, watermark"
    assert built.parts[0].source == "scenes:s.text"


def test_builder_is_deterministic():
    assert build_scene_prompt(scene_with_branch()) == build_scene_prompt(scene_with_branch())


def test_empty_scene_is_refused():
    with pytest.raises(InvalidGeneration, match="scene_id: scene s9 is empty"):
        build_scene_prompt(Scene(id="s9", text="  ", summary=None))


def test_raw_prompt_and_job_negative_prompt():
    built = build_raw_prompt(
        "a castle", Preset("p", ("oil painting",)), (LoraStyle("s", ("sty",)),), negative_prompt=""
    )
    assert built.prompt == "sty, a castle, oil painting"
    assert built.negative_prompt == ""
    with pytest.raises(InvalidGeneration, match="prompt: must not be empty"):
        build_raw_prompt(" ")


def test_story_styles_apply_to_listed_scenes_and_clamp_strength():
    ready = LoraModel("l1", "ink", "loras/ink.safetensors", ("inkdrw",), {"min": 0.5, "max": 1.0})
    training = LoraModel("l2", "wip", "loras/wip.safetensors", status="training")
    settings = [
        StoryLoraSetting(ready, 1.3, ("all",), id="a"),
        StoryLoraSetting(ready, 0.2, ("sc2",), id="b"),
        StoryLoraSetting(training, 0.8, ("all",), id="c"),
    ]
    chosen, warnings = story_loras_for_scene(settings, "sc1")
    assert [(c.strength, c.note, c.source) for c in chosen] == [
        (1.0, "strength 1.3 clamped to 1.0", "story_lora_settings:a")
    ]
    assert warnings == ["story style 'wip' skipped: its LoRA is training"]
    chosen, _ = story_loras_for_scene(settings, "sc2")
    assert [c.strength for c in chosen] == [1.0, 0.5]
