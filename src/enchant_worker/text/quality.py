"""`calculateSceneQuality` of the seed (section 6) for `builtin`: a QualityScore of measurable features.

Each of the five scores is 0-1 and comes with the evidence that set it:

- narrative_coherence: sentence length in a readable band, sentences that continue the previous one (a
  name or a pronoun carried over), named characters present
- visual_potential: concrete visual vocabulary (colour, light, weather, material, place, face and body
  words) per 100 words, a location
- character_development: the development of the characters present across the story (their emotion
  changing between appearances, emotional variety, introspection), see `character_profiles`
- pacing: the scene's length against its chapter's rhythm (median scene length), sentence length variety
- emotional_impact: emotion cues per 100 words, the strongest reading's intensity, emotional variety,
  and an emotional turn from the previous scene

`overall` is their mean. A scene too short to judge (under `MIN_WORDS_TO_JUDGE` words) gets low scores
and says so."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from enchant_worker.text import lexicon as lx
from enchant_worker.text.builtin import split_sentences
from enchant_worker.text.story_input import SceneInput, StoryInput

SCORE_FIELDS = (
    "narrative_coherence",
    "visual_potential",
    "character_development",
    "pacing",
    "emotional_impact",
)
MIN_WORDS_TO_JUDGE = 20
READABLE_SENTENCE_WORDS = (8.0, 28.0)  # mean sentence length that reads well
VISUAL_WORDS_PER_100_FULL = 6.0  # visual words per 100 words that earn a full visual score
CUES_PER_100_FULL = 2.0  # emotion cues per 100 words that earn a full density score
SCENE_RHYTHM_TOLERANCE = (
    1.2  # log-ratio to the chapter's median scene length at which the length score is 1/e
)
CHANGE_EMOTIONS_FULL = 3  # distinct emotions of a character that earn full variety
INTENSITY_SHIFT = 0.25  # the same emotion this much stronger or weaker counts as half a change
ARC_WEIGHT, VARIETY_WEIGHT, INTROSPECTION_WEIGHT = 0.45, 0.25, 0.3

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_QUOTED = re.compile(r"[\"“][^\"”]*[\"”]")
_PRONOUN = frozenset(
    {
        "he",
        "she",
        "him",
        "her",
        "his",
        "hers",
        "they",
        "them",
        "their",
        "i",
        "me",
        "my",
        "we",
        "us",
        "our",
        "it",
        "its",
        "this",
        "that",
        "there",
        "then",
    }
)
_THIRD_PERSON = frozenset({"he", "she", "him", "her", "his", "himself", "herself"})
INTROSPECTION = frozenset(
    {
        "thought",
        "think",
        "thinking",
        "wondered",
        "wonder",
        "wondering",
        "realized",
        "realised",
        "remembered",
        "remember",
        "knew",
        "understood",
        "decided",
        "wished",
        "regretted",
        "imagined",
        "considered",
        "doubted",
        "felt",
        "feel",
        "feeling",
        "believed",
        "hoped",
        "feared",
        "recalled",
        "reflected",
        "admitted",
        "promised",
        "memory",
        "memories",
        "mind",
        "heart",
        "himself",
        "herself",
        "myself",
        "ashamed",
        "guilt",
        "longed",
    }
)
VISUAL = (
    frozenset(
        {
            # colour and light
            "red",
            "blue",
            "green",
            "yellow",
            "gold",
            "golden",
            "silver",
            "black",
            "white",
            "grey",
            "gray",
            "crimson",
            "scarlet",
            "amber",
            "pale",
            "dark",
            "darkness",
            "bright",
            "brilliant",
            "dim",
            "light",
            "lamp",
            "lantern",
            "candle",
            "candles",
            "shadow",
            "shadows",
            "glow",
            "glowed",
            "gleamed",
            "glittered",
            "shone",
            "shining",
            "sun",
            "sunlight",
            "moon",
            "moonlight",
            "stars",
            "fire",
            "flame",
            "flames",
            "smoke",
            "beam",
            "flash",
            "flashed",
            # weather, water, land
            "mist",
            "fog",
            "rain",
            "snow",
            "storm",
            "wind",
            "clouds",
            "cloud",
            "sky",
            "sea",
            "waves",
            "wave",
            "water",
            "river",
            "hill",
            "hills",
            "rocks",
            "rock",
            "cliff",
            "cliffs",
            "trees",
            "tree",
            "leaves",
            "grass",
            "field",
            "mud",
            "ice",
            "sand",
            "shore",
            "roof",
            "wall",
            "walls",
            "window",
            "windows",
            "door",
            "stairs",
            "tower",
            # material and texture
            "stone",
            "wood",
            "wooden",
            "iron",
            "brass",
            "glass",
            "velvet",
            "silk",
            "wool",
            "rusted",
            "cracked",
            "wet",
            "soaked",
            "dust",
            "dusty",
            "rough",
            "smooth",
            "glistening",
            "polished",
        }
    )
    | frozenset(lx.PLACE_NOUNS)
    | lx.APPEARANCE_WORDS
    | lx.FACE_WORDS
    | lx.BODY_WORDS
)


@dataclass
class QualityScore:
    """The seed's QualityScore with the evidence behind each figure. `confidence` is None for builtin
    (measured, not guessed); an llm result carries the model's own confidence, and `certain` is False."""

    overall: float
    narrative_coherence: float
    visual_potential: float
    character_development: float
    pacing: float
    emotional_impact: float
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "builtin"
    confidence: float | None = None
    certain: bool = True
    tentative: bool = False  # an llm score given with low confidence
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_parts(
        cls, scores: dict[str, float], evidence: dict[str, dict[str, Any]], **extra
    ) -> QualityScore:
        overall = round(sum(scores[f] for f in SCORE_FIELDS) / len(SCORE_FIELDS), 3)
        rounded: dict[str, Any] = {f: round(scores[f], 3) for f in SCORE_FIELDS}
        return cls(overall=overall, **rounded, evidence=evidence, **extra)


@dataclass
class SceneFeatures:
    words: int
    sentences: int
    mean_sentence_words: float
    sentence_words_cv: float  # coefficient of variation of sentence lengths
    continuity: float  # share of sentences after the first that carry a name or pronoun over
    dialogue_share: float  # share of the text's characters inside quotes
    visual_words: int
    emotion_cues: int
    cue_emotions: dict[str, int]
    introspection: int


@dataclass
class CharacterProfile:
    """How a character develops across the story's scenes (`suggestCharacterDevelopment` reads it too)."""

    name: str
    scenes: list[tuple[int, int]]  # (chapter, scene) of each appearance, in order
    scene_ids: list[str | None]
    emotions: list[str | None]  # the primary emotion at each appearance (None: no reading)
    changes: float  # appearances whose emotion differs from the previous reading
    distinct: int
    introspection: int  # sentences naming them (or "I" in a first-person scene) with an introspection cue
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


def features(text: str) -> SceneFeatures:
    sentences = split_sentences(text)
    lengths = [len(_WORD.findall(s)) for s in sentences] or [0]
    words = [w.lower() for w in _WORD.findall(text)]
    carried = 0
    previous: set[str] = set()
    for sentence in sentences:
        tokens = _WORD.findall(sentence)
        names = {t for t in tokens if t[0].isupper()}
        lowered = {t.lower() for t in tokens}
        if previous and (names & previous or lowered & _PRONOUN):
            carried += 1
        previous = names
    mean = statistics.fmean(lengths)
    cv = statistics.pstdev(lengths) / mean if mean else 0.0
    cues = Counter(lx.CUE_EMOTION[w] for w in words if w in lx.CUE_EMOTION)
    quoted = sum(len(m.group(0)) for m in _QUOTED.finditer(text))
    return SceneFeatures(
        words=len(words),
        sentences=len(sentences),
        mean_sentence_words=round(mean, 2),
        sentence_words_cv=round(cv, 3),
        continuity=round(carried / (len(sentences) - 1), 3) if len(sentences) > 1 else 0.0,
        dialogue_share=round(quoted / len(text), 3) if text else 0.0,
        visual_words=sum(1 for w in words if w in VISUAL),
        emotion_cues=sum(cues.values()),
        cue_emotions=dict(cues),
        introspection=sum(1 for w in words if w in INTROSPECTION),
    )


def _band(value: float, low: float, high: float, softness: float) -> float:
    """1 inside [low, high], falling off linearly over `softness` outside."""
    if low <= value <= high:
        return 1.0
    distance = low - value if value < low else value - high
    return max(0.0, 1.0 - distance / softness)


def _name_forms(name: str) -> set[str]:
    words = [w for w in name.split() if w not in lx.TITLES and w.rstrip(".") not in lx.TITLES]
    return {name, *words}


def character_profiles(story: StoryInput) -> dict[str, CharacterProfile]:
    """Every character's appearances, emotions and introspection across the story, and a development
    score: 0.4 arc (emotion changes between appearances) + 0.3 variety + 0.3 introspection; one
    appearance is judged on variety and introspection only (no arc can be seen)."""
    appearances: dict[str, list[SceneInput]] = {}
    for scene in story.scenes:
        for name in scene.characters:
            appearances.setdefault(name, []).append(scene)
    profiles = {}
    for name, scenes in appearances.items():
        forms = _name_forms(name)
        emotions: list[str | None] = []
        readings = []
        inner = 0
        for scene in scenes:
            reading = next((e for e in scene.emotions if e.character == name), None)
            emotions.append(reading.emotion if reading else None)
            if reading:
                readings.append(reading)
            inner += _introspective_sentences(scene, name, forms)
        # a change: another emotion (1), or the same one much stronger or weaker (0.5)
        changes = sum(
            1.0
            if a.emotion != b.emotion
            else 0.5
            if abs(a.intensity - b.intensity) >= INTENSITY_SHIFT
            else 0.0
            for a, b in zip(readings, readings[1:], strict=False)
        )
        distinct = len({r.emotion for r in readings})
        variety = min(1.0, max(0, distinct - 1) / (CHANGE_EMOTIONS_FULL - 1))
        introspection = min(1.0, 2 * inner / len(scenes))
        if len(scenes) > 1:
            # one reading only: the arc cannot be seen, neither credited nor blamed
            arc = changes / (len(readings) - 1) if len(readings) > 1 else (0.5 if readings else 0.0)
            score = (
                ARC_WEIGHT * min(1.0, arc) + VARIETY_WEIGHT * variety + INTROSPECTION_WEIGHT * introspection
            )
            why = (
                f"{changes:g} emotion change(s) over {len(scenes)} appearances, {distinct} distinct emotion(s), "
                f"{inner} introspective sentence(s)"
            )
        else:
            arc = None
            score = 0.5 * variety + 0.5 * introspection
            why = f"one appearance: no arc to see; {distinct} emotion(s), {inner} introspective sentence(s)"
        profiles[name] = CharacterProfile(
            name,
            [(s.chapter, s.number) for s in scenes],
            [s.id for s in scenes],
            emotions,
            changes,
            distinct,
            inner,
            round(score, 3),
            {
                "arc": None if arc is None else round(arc, 3),
                "variety": round(variety, 3),
                "introspection": round(introspection, 3),
                "why": why,
            },
        )
    return profiles


def _introspective_sentences(scene: SceneInput, name: str, forms: set[str]) -> int:
    """Sentences about the character (naming them, a he/she following a sentence that did, or "I" when they
    narrate) with an introspection cue."""
    first_person = bool(scene.characters) and scene.characters[0] == name and re.search(r"\bI\b", scene.text)
    about = False
    count = 0
    for sentence in split_sentences(scene.text):
        tokens = _WORD.findall(sentence)
        lowered = {t.lower() for t in tokens}
        named = bool(forms.intersection(tokens))
        if named:
            about = True
        elif any(t[0].isupper() and t != "I" for t in tokens[1:]):
            about = False  # someone else is named: a pronoun now means them
        if (
            named or about and lowered & _THIRD_PERSON or first_person and "I" in tokens
        ) and not INTROSPECTION.isdisjoint(lowered):
            count += 1
    return count


def story_character_development(profiles: dict[str, CharacterProfile]) -> float:
    """The story's character_development_score: recurring characters' scores weighted by the square of their
    appearances, so the leads count most (a character seen once does not count while any recurs)."""
    recurring = [p for p in profiles.values() if len(p.scenes) > 1] or list(profiles.values())
    if not recurring:
        return 0.0
    weight = sum(len(p.scenes) ** 2 for p in recurring)
    return round(sum(p.score * len(p.scenes) ** 2 for p in recurring) / weight, 3)


def dominant_emotion(scene: SceneInput, feats: SceneFeatures) -> str | None:
    if scene.emotions:
        return max(scene.emotions, key=lambda e: e.intensity).emotion
    if feats.cue_emotions:
        return max(feats.cue_emotions, key=lambda e: feats.cue_emotions[e])
    return None


def score_scene(
    scene: SceneInput,
    feats: SceneFeatures,
    *,
    chapter_median_words: float,
    previous_emotion: str | None,
    profiles: dict[str, CharacterProfile],
) -> QualityScore:
    """calculateSceneQuality for one scene, given its chapter's rhythm and the story's character profiles."""
    evidence: dict[str, dict[str, Any]] = {}
    notes = []
    short = feats.words < MIN_WORDS_TO_JUDGE
    judged = 0.3 if short else 1.0  # too little text to judge: scores held low, and said so
    if short:
        notes.append(
            f"the scene has {feats.words} word(s), under {MIN_WORDS_TO_JUDGE}: too short to judge; "
            "scores are held low"
        )
    # narrative coherence
    band = _band(feats.mean_sentence_words, *READABLE_SENTENCE_WORDS, softness=15.0)
    has_characters = 1.0 if scene.characters else 0.5
    coherence = judged * (0.4 * band + 0.4 * feats.continuity + 0.2 * has_characters)
    evidence["narrative_coherence"] = {
        "mean_sentence_words": feats.mean_sentence_words,
        "readable_band": list(READABLE_SENTENCE_WORDS),
        "continuity": feats.continuity,
        "characters": len(scene.characters),
        "why": f"sentences average {feats.mean_sentence_words} words; {round(100 * feats.continuity)}% carry a "
        f"name or pronoun over; {len(scene.characters)} named character(s)",
    }
    # visual potential
    per_100 = 100.0 * feats.visual_words / max(1, feats.words)
    visual = judged * (
        0.75 * min(1.0, per_100 / VISUAL_WORDS_PER_100_FULL) + 0.25 * (1.0 if scene.location else 0.0)
    )
    evidence["visual_potential"] = {
        "visual_words": feats.visual_words,
        "per_100_words": round(per_100, 2),
        "location": scene.location,
        "why": f"{feats.visual_words} concrete visual word(s) ({per_100:.1f} per 100 words); "
        + (f"set at {scene.location}" if scene.location else "no location named"),
    }
    # character development
    present = [profiles[n] for n in scene.characters if n in profiles]
    development = judged * (statistics.fmean(p.score for p in present) if present else 0.0)
    evidence["character_development"] = {
        "characters": {p.name: p.score for p in present},
        "why": "; ".join(f"{p.name}: {p.evidence['why']}" for p in present) or "no named character present",
    }
    # pacing
    ratio = feats.words / chapter_median_words if chapter_median_words else 1.0
    rhythm = math.exp(-abs(math.log(max(ratio, 1e-6))) / SCENE_RHYTHM_TOLERANCE)
    variety = _band(feats.sentence_words_cv, 0.25, 0.9, softness=0.5)
    pacing = judged * (0.7 * rhythm + 0.3 * variety)
    evidence["pacing"] = {
        "words": feats.words,
        "chapter_median_scene_words": round(chapter_median_words, 1),
        "length_ratio": round(ratio, 2),
        "sentence_length_cv": feats.sentence_words_cv,
        "dialogue_share": feats.dialogue_share,
        "why": f"{feats.words} words, {ratio:.2f}x the chapter's median scene; sentence length varies by "
        f"{round(100 * feats.sentence_words_cv)}%",
    }
    # emotional impact
    cue_rate = 100.0 * feats.emotion_cues / max(1, feats.words)
    strongest = max((e.intensity for e in scene.emotions), default=0.0)
    kinds = len(feats.cue_emotions)
    emotion = dominant_emotion(scene, feats)
    turn = (
        1.0
        if emotion and previous_emotion and emotion != previous_emotion
        else (0.5 if emotion and not previous_emotion else 0.0)
    )
    impact = judged * (
        0.35 * min(1.0, cue_rate / CUES_PER_100_FULL)
        + 0.25 * strongest
        + 0.2 * min(1.0, kinds / 3)
        + 0.2 * turn
    )
    evidence["emotional_impact"] = {
        "emotion_cues": feats.emotion_cues,
        "per_100_words": round(cue_rate, 2),
        "strongest_intensity": strongest,
        "emotions": feats.cue_emotions,
        "dominant": emotion,
        "previous_dominant": previous_emotion,
        "why": f"{feats.emotion_cues} emotion cue(s) ({cue_rate:.1f} per 100 words) of {kinds} kind(s); "
        + (
            f"turns from {previous_emotion} to {emotion}"
            if turn == 1.0
            else f"stays {emotion}"
            if emotion
            else "no emotion read"
        ),
    }
    scores = {
        "narrative_coherence": coherence,
        "visual_potential": visual,
        "character_development": development,
        "pacing": pacing,
        "emotional_impact": impact,
    }
    return QualityScore.from_parts(scores, evidence, notes=notes)


def score_story_scenes(
    story: StoryInput,
) -> tuple[list[QualityScore], dict[str, CharacterProfile], list[SceneFeatures]]:
    """Every scene's QualityScore, in story order, with the character profiles and the features."""
    profiles = character_profiles(story)
    results, all_features = [], []
    previous: str | None = None
    for chapter in story.chapters:
        feats = [features(s.text) for s in chapter.scenes]
        median = statistics.median([f.words for f in feats]) if feats else 0.0
        for scene, feat in zip(chapter.scenes, feats, strict=True):
            results.append(
                score_scene(
                    scene, feat, chapter_median_words=median, previous_emotion=previous, profiles=profiles
                )
            )
            previous = dominant_emotion(scene, feat) or previous
            all_features.append(feat)
    return results, profiles, all_features
