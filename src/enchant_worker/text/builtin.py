"""`builtin`: the deterministic text analyzer. No model, only rules and the project's word lists
(`lexicon`); fast on one CPU core. The default and the fallback of every other analyzer.

analyze_chapter:
1. Paragraphs with their offsets; explicit breaks (`***`, `* * *`, `#`, `---`, `~~~`, `§`) cut scenes.
2. Implicit breaks: a paragraph opening with a shift of time or place ("The next morning", "Meanwhile",
   "Back at the inn") cuts the scene when the scene so far is long enough.
3. Names: capitalised word runs counted where they cannot be a sentence's first word, titles ("Captain
   Reyes"), attributed speech ("said Will"); words that are also common words ("Will", "Hope") count only
   there. Aliases merge: a first or last name into the full name, "Dr. Marsh" into "Elena Marsh", stated
   nicknames ("Margaret, whom everyone called Peg"), and the story's known characters.
4. Per scene: characters present, location (named places, "in the kitchen"), emotions per character
   from the cues in the sentences about them (intensity from intensifiers and strong cues, secondary
   emotions, triggers, face and body notes), the scene's tone, a title and a summary.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from enchant_worker.text import lexicon as lx
from enchant_worker.text.analysis import (
    ChapterAnalysis,
    CharacterInfo,
    EmotionReading,
    KnownCharacter,
    LocationInfo,
    ProcessingOptions,
    SceneAnalysis,
)

NAME = "builtin"
VERSION = "1"
MIN_SCENE_WORDS_FOR_IMPLICIT_BREAK = 80
SUMMARY_MAX_WORDS = 40
TITLE_MAX_WORDS = 8
NOTE_MAX_WORDS = 12
BASE_INTENSITY = 0.4

_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n+")
_EXPLICIT_BREAK = re.compile(r"^[ \t]*(?:(?:[*#~=_•·§◆◇✦-][ \t]*){1,9}|(?:\*[ \t]*){3})[ \t]*$")
_TIME_SHIFT = re.compile(r"^[\"'“‘(]*(?:" + "|".join(lx.TIME_SHIFT_OPENINGS) + r")\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n+")
_TITLE_RE = "|".join(lx.TITLES)
_CAP_WORD = r"[A-Z][a-z]+(?:['’-][A-Za-z]+)?"
_NAME_RUN = re.compile(
    rf"\b(?=[A-Z])(?:(?P<title>{_TITLE_RE})\.?\s+)?(?P<name>{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}})"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SPEECH = "|".join(lx.SPEECH_VERBS)
_ATTRIBUTION = re.compile(
    rf"(?:\b(?:{_SPEECH})\s+(?P<after>{_CAP_WORD}(?:\s+{_CAP_WORD})?)\b)|"
    rf"(?:(?P<before>{_CAP_WORD}(?:\s+{_CAP_WORD})?)\s+(?:{_SPEECH})\b)"
)
_NICKNAME = re.compile(
    rf"(?P<full>{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}}),?\s+(?:whom|who)\s+(?:everyone|everybody|they|people|"
    rf"all|the others|[a-z]+ (?:friends|family))?\s*(?:called|call|knew as|know as)\s+(?P<nick>{_CAP_WORD})"
    rf"|(?P<full2>{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}}),?\s+(?:(?:also |better )?known as|nicknamed|"
    rf"called)\s+(?P<nick2>{_CAP_WORD})"
)
_PLACE_PREP = re.compile(
    rf"\b(?:in|at|into|inside|across|through|near|outside|reached|entered|toward|towards|"
    rf"from|to|on)\s+(?:the\s+)?(?P<place>{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}})"
)
_PLACE_NOUN = re.compile(
    r"\b(?:in|at|into|inside|to|toward|towards|entered|reached|across|through|on|onto|"
    r"outside|near|behind|up|down)\s+(?:the|a|an|her|his|their|our|my|its)\s+"
    r"(?:(?P<adj>[a-z]+)\s+)?(?P<noun>" + "|".join(sorted(lx.PLACE_NOUNS, key=len, reverse=True)) + r")\b"
)
_TRIGGER = re.compile(
    r"\b(?:at the (?:sight|sound|news|thought|mention|memory) of|because(?: of)?|when|"
    r"after|as soon as|upon (?:seeing|hearing))\s+(?P<what>[^,.;:!?\"”]{3,80})",
    re.IGNORECASE,
)
_VERB_AFTER = re.compile(
    r"(?:['’]s)?\s+(?:was|had|is|has|did|could|would|felt|looked|said|knew|saw|took|came|went|"
    r"sat|stood|ran|made|kept|found|thought|told|got|gave|[a-z]+ed)\b"
)
_CAP_TOKEN = re.compile(r"\b[A-Z][A-Za-z]*")
_SPEECH_AFTER = re.compile(r"\s+(?:" + _SPEECH + r")\b")
_NOTE_WORDS = lx.FACE_WORDS | lx.BODY_WORDS
_PRONOUNS = re.compile(r"\b(?:he|she|him|her|his|hers|himself|herself)\b", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"[,;:—–]|\band\b")


@dataclass
class _Candidate:
    surface: str
    title: str | None = None
    strong: int = 0  # mid-sentence, titled or attributed
    weak: int = 0  # at a sentence start
    subject: int = 0  # at a sentence start and followed by a verb ("Elena climbed")
    words: int = 1
    first_at: int = 10**9


@dataclass
class _Paragraph:
    start: int
    end: int
    text: str
    explicit_break: bool = False


@dataclass
class _Scene:
    start: int
    end: int
    break_kind: str
    paragraphs: list[_Paragraph] = field(default_factory=list)


class BuiltinAnalyzer:
    name = NAME
    version = VERSION
    capabilities: tuple[str, ...] = (
        "scene_segmentation",
        "characters",
        "aliases",
        "locations",
        "emotions",
        "dialogue",
    )

    def analyze_chapter(self, text: str, options: ProcessingOptions | None = None) -> ChapterAnalysis:
        options = options or ProcessingOptions()
        notes: list[str] = []
        # 1-2. Scenes
        scenes = segment(text)
        if len(scenes) > options.max_scenes:
            notes.append(
                f"{len(scenes)} scenes found; the last ones were merged to keep {options.max_scenes}"
            )
            last = scenes[options.max_scenes - 1]
            last.end = scenes[-1].end
            scenes = scenes[: options.max_scenes]
        # 3. Names across the chapter
        resolver = NameResolver.from_text(text, options.known_characters)
        # 4. Each scene
        analyses: list[SceneAnalysis] = []
        locations: dict[str, LocationInfo] = {}
        sentences: list[str] = []
        for number, scene in enumerate(scenes, start=1):
            body = text[scene.start : scene.end]
            analysis, scene_sentences = self._scene(number, scene, body, resolver, locations)
            analyses.append(analysis)
            sentences += scene_sentences
        if not analyses:
            notes.append("the chapter has no text: no scenes")
        characters = resolver.characters(sentences)
        return ChapterAnalysis(NAME, analyses, characters, list(locations.values()), notes)

    def process_scene(self, text: str, options: ProcessingOptions | None = None) -> SceneAnalysis:
        """The seed's processScene: one scene's text analysed on its own."""
        resolver = NameResolver.from_text(text, (options or ProcessingOptions()).known_characters)
        return self._scene(1, _Scene(0, len(text), "start"), text, resolver, {})[0]

    def _scene(
        self,
        number: int,
        scene: _Scene,
        body: str,
        resolver: NameResolver,
        locations: dict[str, LocationInfo],
    ) -> tuple[SceneAnalysis, list[str]]:
        sentences = split_sentences(body)
        mentions = [resolver.mentioned(s) for s in sentences]
        present: list[str] = []
        for names in mentions:
            present += [n for n in names if n not in present]
        for speaker in _speakers(body, resolver):
            if speaker not in present:
                present.append(speaker)
        place, place_sentence = _location(body, sentences, resolver)
        if place is not None and place.lower() not in {k.lower() for k in locations}:
            locations[place] = LocationInfo(place, _short(place_sentence, 30) if place_sentence else None)
        emotions = _emotions(sentences, mentions, present)
        tone = _tone(sentences, emotions)
        summary = _summary(sentences, mentions)
        title = _title(present, place, summary)
        return SceneAnalysis(
            number,
            scene.start,
            scene.end,
            body,
            title,
            summary,
            tone,
            place,
            present,
            emotions,
            scene.break_kind,
        ), sentences


# -- 1-2. segmentation ---------------------------------------------------------------------------


def paragraphs(text: str) -> list[_Paragraph]:
    """Paragraphs (blank-line separated; single lines when the text has no blank lines) with offsets."""
    if "\n\n" not in text.replace("\r", "") and text.count("\n") > 1:
        splitter = re.compile(r"\n+")
    else:
        splitter = _PARAGRAPH_SPLIT
    found: list[_Paragraph] = []
    position = 0
    for match in [*splitter.finditer(text), None]:
        end = match.start() if match else len(text)
        chunk = text[position:end]
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip())
            start = position + lead
            stripped = chunk.strip()
            found.append(
                _Paragraph(start, start + len(stripped), stripped, bool(_EXPLICIT_BREAK.match(stripped)))
            )
        if match:
            position = match.end()
    return found


def segment(text: str) -> list[_Scene]:
    """Scenes as spans of the text; explicit break lines belong to no scene."""
    scenes: list[_Scene] = []
    current: _Scene | None = None
    pending_break = "start"
    words = 0
    for paragraph in paragraphs(text):
        if paragraph.explicit_break:
            if current is not None:
                scenes.append(current)
                current = None
            pending_break = "explicit"
            continue
        shift = _TIME_SHIFT.match(paragraph.text)
        if current is not None and shift and words >= MIN_SCENE_WORDS_FOR_IMPLICIT_BREAK:
            scenes.append(current)
            current = None
            pending_break = (
                "place"
                if shift.group(0).lower().lstrip("\"'“‘(").startswith(("back", "across", "elsewhere"))
                else "time"
            )
        if current is None:
            current = _Scene(
                paragraph.start,
                paragraph.end,
                pending_break if scenes or pending_break != "explicit" else "start",
            )
            if not scenes:
                current.break_kind = "start"
            words = 0
        current.end = paragraph.end
        current.paragraphs.append(paragraph)
        words += len(paragraph.text.split())
    if current is not None:
        scenes.append(current)
    return scenes


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


# -- 3. names ------------------------------------------------------------------------------------


class NameResolver:
    """Maps every surface form (name, alias, title + surname) to one canonical character name."""

    def __init__(self, canon: dict[str, list[str]], titles: dict[str, str]):
        self.canon = canon  # canonical -> aliases
        self.lookup: dict[str, str] = {}
        for name, aliases in canon.items():
            for form in [name, *aliases]:
                self.lookup.setdefault(form, name)
        # first and last names of full names, when they name one character only
        parts: dict[str, set[str]] = defaultdict(set)
        for name in canon:
            words = name.split()
            if len(words) > 1:
                for part in (words[0], words[-1]):
                    if part not in lx.NOT_NAMES and part not in lx.TITLES:
                        parts[part].add(name)
        self.implicit = {
            part: next(iter(names))
            for part, names in parts.items()
            if len(names) == 1 and part not in self.lookup
        }
        self.lookup.update(self.implicit)
        self.titles = titles
        self.used: Counter[tuple[str, str]] = Counter()
        self.mentions: Counter[str] = Counter()
        forms = sorted(self.lookup, key=len, reverse=True)
        self._pattern = (
            re.compile(r"\b(" + "|".join(map(re.escape, forms)) + r")(?:['’]s)?\b") if forms else None
        )
        self._first_words = {m.group(0) for form in forms if (m := _CAP_TOKEN.match(form))}

    @classmethod
    def from_text(cls, text: str, known: Sequence[KnownCharacter] = ()) -> NameResolver:
        candidates = _candidates(text)
        known_forms = {form: k.name for k in known for form in (k.name, *k.aliases)}
        accepted = {s: c for s, c in candidates.items() if _is_name(c, s in known_forms)}
        # a name seen at a place ("in Marrow", "at Thornfield Hall") is a place unless attributed speech says otherwise
        places = {m.group("place") for m in _PLACE_PREP.finditer(text)}
        accepted = {
            s: c
            for s, c in accepted.items()
            if s in known_forms
            or not (s in places and c.strong <= text.count(s) // 2)
            and not (s.split()[-1] in lx.PLACE_SUFFIXES and c.subject == 0 and c.title is None)
        }
        canon: dict[str, list[str]] = {k.name: list(k.aliases) for k in known}
        titles: dict[str, str] = {}
        nick_of = {}
        for match in _NICKNAME.finditer(text):
            full, nick = (
                match.group("full") or match.group("full2"),
                match.group("nick") or match.group("nick2"),
            )
            if full and nick and full != nick:
                nick_of[nick] = full
        # 1. Multi-word names first: they are canonical unless they extend a known name. A bare title
        #    ("the Queen") waits for step 3.
        bare_titles = [s for s in accepted if s in lx.TITLES]
        order = sorted(
            (s for s in accepted if s not in lx.TITLES), key=lambda s: (-len(s.split()), accepted[s].first_at)
        )
        for surface in order:
            candidate = accepted[surface]
            target = _merge_target(surface, candidate.title, canon, known_forms, nick_of)
            if target is None:
                canon.setdefault(surface, [])
                if candidate.title:
                    titles[surface] = candidate.title
            elif surface != target and surface not in canon[target]:
                canon[target].append(surface)
        # 2. A titled form ("Captain Reyes") is an alias of the name it titles.
        for name, aliases in canon.items():
            for title in {c.title for s, c in accepted.items() if c.title and s in (name, *aliases)}:
                form = f"{title} {name.split()[-1]}"
                if form != name and form not in aliases:
                    aliases.append(form)
                titles.setdefault(name, title)
        # 3. A bare title is the one character who bears it, if only one does.
        for surface in bare_titles:
            bearers = [n for n, t in titles.items() if t.rstrip(".") == surface]
            if len(bearers) == 1 and surface not in canon[bearers[0]]:
                canon[bearers[0]].append(surface)
        return cls(canon, titles)

    def mentioned(self, sentence: str, record: bool = True) -> list[str]:
        """The characters a sentence names (each once, in order); `record` counts them for `characters`."""
        if self._pattern is None or self._first_words.isdisjoint(_CAP_TOKEN.findall(sentence)):
            return []
        found: list[str] = []
        for match in self._pattern.finditer(sentence):
            surface = match.group(1)
            if (
                surface in lx.COMMON_WORD_NAMES
                and not _mid_sentence(sentence, match.start())
                and not _SPEECH_AFTER.match(sentence, match.end())
            ):
                continue
            name = self.lookup[surface]
            if record:
                self.used[(name, surface)] += 1
            if name not in found:
                found.append(name)
        if record:
            for name in found:
                self.mentions[name] += 1
        return found

    def characters(self, sentences: list[str]) -> list[CharacterInfo]:
        """The characters this chapter mentioned (read after every sentence went through `mentioned`)."""
        described = [s for s in sentences if not lx.APPEARANCE_WORDS.isdisjoint(_WORD.findall(s.lower()))]
        infos = []
        for name, aliases in self.canon.items():
            if not self.mentions[name]:
                continue  # a known character absent from this chapter
            used = [p for p, n in self.implicit.items() if n == name and self.used[(name, p)]]
            forms = [name, *aliases, *used]
            infos.append(
                CharacterInfo(
                    name, sorted(set(aliases) | set(used)), _appearance(described, forms), self.mentions[name]
                )
            )
        return infos


def _candidates(text: str) -> dict[str, _Candidate]:
    found: dict[str, _Candidate] = {}
    for match in _NAME_RUN.finditer(text):
        words = match.group("name").split()
        offset = match.start("name")
        # drop leading words that are not names ("When Elena" -> "Elena"); cut at the first non-name word
        while words and (
            words[0] in lx.NOT_NAMES
            or (words[0].lower() in lx.CUE_EMOTION and words[0] not in lx.COMMON_WORD_NAMES)
        ):
            offset += len(words[0]) + 1
            words = words[1:]
        kept: list[str] = []
        for word in words:
            if word in lx.NOT_NAMES and not (kept and word in lx.PLACE_SUFFIXES):
                break
            kept.append(word)
        if not kept:
            continue
        surface = " ".join(kept).removesuffix("'s").removesuffix("’s")
        title = match.group("title") if offset == match.start("name") else None
        if title in ("Dr", "Doctor"):
            title = "Dr."
        elif title in ("Mr", "Mrs", "Ms", "Capt", "Prof", "Sgt"):
            title += "."
        candidate = found.setdefault(surface, _Candidate(surface))
        candidate.first_at = min(candidate.first_at, offset)
        if title:
            candidate.title = candidate.title or title
            candidate.strong += 1
        elif _mid_sentence(text, offset):
            candidate.strong += 1
        else:
            candidate.weak += 1
            if _VERB_AFTER.match(text, offset + len(" ".join(kept))):
                candidate.subject += 1
        candidate.words = len(kept)
    for match in _ATTRIBUTION.finditer(text):
        surface = match.group("after") or match.group("before")
        words = [w for w in surface.split() if w not in lx.NOT_NAMES]
        if words:
            candidate = found.setdefault(" ".join(words), _Candidate(" ".join(words)))
            candidate.strong += 1
            candidate.first_at = min(candidate.first_at, match.start())
    return found


def _is_name(candidate: _Candidate, known: bool) -> bool:
    surface = candidate.surface
    if any(w in lx.NOT_NAMES for w in surface.split()[:1]):
        return False
    if surface.lower() in lx.CUE_EMOTION or len(surface) < 2:
        return False
    if surface in lx.COMMON_WORD_NAMES:
        return candidate.strong >= 1 and (known or candidate.strong >= 2 or candidate.title is not None)
    if known:
        return True
    return (
        candidate.strong >= 2
        or (candidate.strong >= 1 and candidate.weak >= 1)
        or candidate.title is not None
        or (candidate.words >= 2 and candidate.strong + candidate.weak >= 1)
        or (candidate.subject >= 1 and candidate.strong + candidate.weak >= 2)
    )


def _merge_target(
    surface: str,
    title: str | None,
    canon: dict[str, list[str]],
    known_forms: dict[str, str],
    nick_of: dict[str, str],
) -> str | None:
    if surface in known_forms:
        return known_forms[surface]
    if surface in canon:
        return surface
    if surface in nick_of:
        full = nick_of[surface]
        for name, aliases in canon.items():
            if full == name or full in aliases:
                return name
    words = surface.split()
    matches = []
    for name, aliases in canon.items():
        parts = name.split()
        if len(words) == 1 and len(parts) > 1 and (words[0] == parts[0] or words[0] == parts[-1]):
            matches.append(name)
        elif len(words) == 1 and any(words[0] == a for a in aliases):
            matches.append(name)
        elif len(words) < len(parts) and parts[: len(words)] == words:
            matches.append(name)
    if len(matches) == 1:
        return matches[0]
    return None


def _mid_sentence(text: str, offset: int) -> bool:
    """Whether the word at `offset` cannot be a sentence's first word."""
    before = text[max(0, offset - 4) : offset]
    stripped = before.rstrip(" \t")
    if not stripped or stripped.endswith(("\n",)):
        return False
    last = stripped[-1]
    if last in ".!?…\"“‘'(:—–-":
        return last in "'’" and len(stripped) > 1 and stripped[-2].isalpha()  # "Tom's" style only
    return last.isalnum() or last in ",;’”)"


def _speakers(body: str, resolver: NameResolver) -> list[str]:
    found = []
    for match in _ATTRIBUTION.finditer(body):
        surface = match.group("after") or match.group("before")
        for name in resolver.mentioned(" x " + surface, record=False):
            if name not in found:
                found.append(name)
    return found


def _appearance(sentences: list[str], forms: list[str]) -> str | None:
    if not sentences:
        return None
    text = "\n".join(sentences)
    pattern = re.compile(
        r"\b(?:" + "|".join(map(re.escape, forms)) + r")\b(?:,\s+(?P<appos>an?\s+[^,.;]{4,120}?),|"
        r"\s+(?:was|had|wore|has|is|stood)\s+(?P<desc>[^.;!?]{4,160}))"
    )
    found: list[str] = []
    for match in pattern.finditer(text):
        phrase = (match.group("appos") or match.group("desc") or "").strip()
        if set(w.lower().strip(",") for w in phrase.split()) & lx.APPEARANCE_WORDS:
            phrase = _short(phrase, 25)
            if phrase not in found:
                found.append(phrase)
        if len(found) >= 2:
            break
    return "; ".join(found) or None


# -- 4. scene details ----------------------------------------------------------------------------


def _location(body: str, sentences: list[str], resolver: NameResolver) -> tuple[str | None, str | None]:
    counts: Counter[str] = Counter()
    first_sentence: dict[str, str] = {}
    names = set(resolver.lookup)
    for sentence in sentences:
        for match in _PLACE_PREP.finditer(sentence):
            place = match.group("place")
            words = place.split()
            while words and words[0] in lx.NOT_NAMES and words[0] not in lx.PLACE_SUFFIXES:
                words = words[1:]
            place = " ".join(words)
            if (
                not place
                or place in names
                or any(w in lx.NOT_NAMES and w not in lx.PLACE_SUFFIXES for w in words)
            ):
                continue
            if place.split()[-1] in lx.PLACE_SUFFIXES:
                counts[place] += 3
            elif match.group(0).split()[0] in (
                "in",
                "at",
                "inside",
                "reached",
                "entered",
                "across",
                "through",
            ):
                counts[place] += 2
            else:
                continue
            first_sentence.setdefault(place, sentence)
        for match in _PLACE_NOUN.finditer(sentence):
            adj = match.group("adj")
            noun = match.group("noun")
            place = (
                f"the {adj} {noun}"
                if adj
                and adj not in ("old", "other", "same", "whole", "very")
                and adj.isalpha()
                and adj not in lx.CUE_EMOTION
                else f"the {noun}"
            )
            counts[place] += 1
            first_sentence.setdefault(place, sentence)
    if not counts:
        return None, None
    best = max(counts, key=lambda p: (counts[p], -body.find(p.removeprefix("the "))))
    return best, first_sentence.get(best)


def _emotions(sentences: list[str], mentions: list[list[str]], present: list[str]) -> list[EmotionReading]:
    scores: dict[str, Counter[str]] = defaultdict(Counter)
    strongest: dict[str, tuple[float, str]] = {}
    face: dict[str, str] = {}
    body: dict[str, str] = {}
    last: list[str] = []
    for sentence, names in zip(sentences, mentions, strict=True):
        who = names or (last[-1:] if len(last) >= 1 and _PRONOUNS.search(sentence) else [])
        if names:
            last = names
        if not who:
            continue
        lowered_raw = _WORD.findall(sentence)
        words = [w.lower() for w in lowered_raw]
        wordset = set(words)
        if wordset.isdisjoint(lx.CUE_EMOTION) and wordset.isdisjoint(_NOTE_WORDS):
            continue
        boost = sum(0.12 for w in words if w in lx.INTENSIFIERS) + (0.1 if "!" in sentence else 0.0)
        soften = sum(0.15 for w in words if w in lx.SOFTENERS)
        for word, raw in zip(words, lowered_raw, strict=True):
            emotion = lx.CUE_EMOTION.get(word)
            if emotion is None or raw[0].isupper() and raw in lx.COMMON_WORD_NAMES:
                continue
            weight = 1.0 + (1.0 if word in lx.STRONG_CUES else 0.0) + boost - soften
            for name in who[:2]:
                scores[name][emotion] += weight  # type: ignore[assignment]  # a Counter of float weights
                if weight > strongest.get(name, (0.0, ""))[0]:
                    strongest[name] = (weight, sentence)
        for name in who[:1]:
            if name not in face and wordset & lx.FACE_WORDS:
                face[name] = _clause(sentence, lx.FACE_WORDS)
            if name not in body and wordset & lx.BODY_WORDS:
                body[name] = _clause(sentence, lx.BODY_WORDS)
    readings = []
    for name in present:
        counter = scores.get(name)
        if not counter:
            continue
        primary, top = counter.most_common(1)[0]
        total = sum(counter.values())
        strong = strongest[name][0]
        intensity = BASE_INTENSITY + 0.1 * (top - 1) + 0.15 * max(0.0, strong - 1.0)
        intensity = round(min(1.0, max(0.05, intensity)), 2)
        secondary = {e: round(min(1.0, s / total), 2) for e, s in counter.most_common() if e != primary}
        trigger = _TRIGGER.search(strongest[name][1])
        readings.append(
            EmotionReading(
                name,
                primary,
                intensity,
                secondary,
                [_short(trigger.group("what"), NOTE_MAX_WORDS)] if trigger else [],
                face.get(name),
                body.get(name),
            )
        )
    return readings


def _clause(sentence: str, vocabulary: frozenset[str]) -> str:
    for piece in _CLAUSE_SPLIT.split(sentence):
        if set(w.lower() for w in _WORD.findall(piece)) & vocabulary:
            return _short(piece.strip(" \"'“”‘’").rstrip(".!?"), NOTE_MAX_WORDS)
    return _short(sentence, NOTE_MAX_WORDS)


def _tone(sentences: list[str], emotions: list[EmotionReading]) -> str:
    counts: Counter[str] = Counter()
    for reading in emotions:
        counts[reading.primary_emotion] += reading.intensity  # type: ignore[assignment]  # float weights
    if not counts:
        for sentence in sentences:
            for word in _WORD.findall(sentence):
                emotion = lx.CUE_EMOTION.get(word) if word.islower() else None
                if emotion:
                    counts[emotion] += 1
    if not counts:
        return lx.NEUTRAL_TONE
    return lx.TONES[counts.most_common(1)[0][0]]


def _summary(sentences: list[str], mentions: list[list[str]]) -> str:
    if not sentences:
        return ""
    chosen = next((i for i, names in enumerate(mentions[:6]) if names), 0)
    words = sentences[chosen].split()
    if len(words) < 12 and chosen + 1 < len(sentences):
        words += sentences[chosen + 1].split()
    return _short(" ".join(words), SUMMARY_MAX_WORDS)


def _title(present: list[str], place: str | None, summary: str) -> str:
    if present and place:
        who = present[0] if len(present) == 1 else f"{present[0]} and {present[1]}"
        return f"{who} at {place}" if len(present) <= 2 else f"{present[0]} and others at {place}"
    if present:
        return " and ".join(present[:2])
    return _short(summary, TITLE_MAX_WORDS) or "Untitled scene"


def _short(text: str, max_words: int) -> str:
    words = " ".join(text.split()).split(" ")
    short = " ".join(words[:max_words])
    return short + ("…" if len(words) > max_words else "")
