#!/usr/bin/env python
"""Quality and speed of story analysis (`builtin` scores) on the annotated extraction set.

Each gold chapter of scripts/bench_extract_gold/ is read as a short story whose chapters are its gold
scenes (`%%`). scripts/bench_extract_gold/weak/ holds deliberately weak variants of each (regenerate them
with --write-variants), chapters separated by `@@`:

- `flat`: every emotion cue and intensifier replaced, exclamations made statements (no emotion changes)
- `static`: the main character's sentences carry one emotion throughout and no introspection (a
  character who never develops)
- `uneven`: the same text cut into wildly uneven chapters (two sentences; most of the story; the rest)

Prints:
- pairwise ranking accuracy: each weak variant against its original, on `overall` and on the score its
  weakness targets (emotional_impact, character_development, pacing); target >= 0.9
- the seed's enhancement rules: which fire on each story (they must fire on the planted weakness, the
  `character_development` rule on `static`, the `pacing` rule on `uneven`, and on no original)
- speed: words per CPU-second of the whole analysis (scene splitting by builtin excluded, as the job reads
  extracted scenes) on a ~100,000-word novel made of the gold chapters, one thread, and the seconds it
  takes; CPU time, because wall time on a shared machine is noise. Reference in the same run: builtin's
  scene extraction of the same novel, whose words/s the ratio is against.

    .venv/bin/python scripts/bench_analyze.py [--words 100000] [--write-variants] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from enchant_worker.text import lexicon as lx  # noqa: E402
from enchant_worker.text.quality import INTROSPECTION  # noqa: E402
from enchant_worker.text.story_analysis import analyze_story  # noqa: E402
from enchant_worker.text.story_input import story_from_texts  # noqa: E402

GOLD = Path(__file__).resolve().parent / "bench_extract_gold"
WEAK = GOLD / "weak"
TARGET = {"flat": "emotional_impact", "static": "character_development", "uneven": "pacing"}
RULE = {"static": "character_development", "uneven": "pacing"}  # the seed's rule each weakness must fire
FLAT_WORD = "still"
THIRD_PERSON = frozenset({"he", "she", "him", "her", "his", "himself", "herself"})
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SENTENCES = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


def load_gold(path: Path) -> tuple[dict, list[str]]:
    _, header, body = path.read_text().split("---\n", 2)
    return json.loads(header), [
        c.strip("\n") for c in re.split(r"^%%$", body, flags=re.MULTILINE) if c.strip()
    ]


def load_weak(path: Path) -> tuple[dict, list[str]]:
    _, header, body = path.read_text().split("---\n", 2)
    return json.loads(header), [
        c.strip("\n") for c in re.split(r"^@@$", body, flags=re.MULTILINE) if c.strip()
    ]


def _replace_words(text: str, should, replacement) -> str:
    return _WORD.sub(lambda m: replacement(m.group(0)) if should(m.group(0)) else m.group(0), text)


def flat(chapters: list[str]) -> list[str]:
    def cue(word: str) -> bool:
        return (
            word.lower() in lx.CUE_EMOTION
            or word.lower() in lx.INTENSIFIERS
            or word.lower() in lx.STRONG_CUES
        )

    return [_replace_words(c, cue, lambda w: FLAT_WORD).replace("!", ".") for c in chapters]


def static(chapters: list[str], name: str) -> list[str]:
    """The main character's sentences (naming them, or a he/she following one that did): one emotion
    (calm) and no inner life."""
    forms = {name, *name.split()}
    narrator = name_is_narrator(chapters, name)
    out = []
    for chapter in chapters:
        paragraphs = []
        for paragraph in chapter.split("\n\n"):
            pieces, about = [], False
            for sentence in _SENTENCES.split(paragraph):
                tokens = _WORD.findall(sentence)
                if forms.intersection(tokens):
                    about = True
                elif any(t[0].isupper() and t != "I" for t in tokens[1:]):
                    about = False
                lowered = {t.lower() for t in tokens}
                if (
                    about
                    and (forms.intersection(tokens) or lowered & THIRD_PERSON)
                    or narrator
                    and "I" in tokens
                ):
                    sentence = _replace_words(
                        sentence, lambda w: w.lower() in lx.CUE_EMOTION, lambda w: "calmly"
                    )
                    sentence = _replace_words(
                        sentence, lambda w: w.lower() in INTROSPECTION, lambda w: "looked"
                    )
                pieces.append(sentence)
            paragraphs.append(" ".join(pieces))
        out.append("\n\n".join(paragraphs))
    return out


def name_is_narrator(chapters: list[str], name: str) -> bool:
    text = "\n".join(chapters)
    return len(re.findall(r"\bI\b", text)) > text.count(name)


def uneven(chapters: list[str]) -> list[str]:
    text = "\n\n".join(chapters)
    sentences = _SENTENCES.split(text)
    first = " ".join(sentences[:2])
    rest = text[len(first) :].strip()
    last_at = rest.rfind("\n\n", 0, int(len(rest) * 0.93))
    return [first, rest[:last_at].strip(), rest[last_at:].strip()]


def main_character(chapters: list[str]) -> str:
    story = story_from_texts("x", chapters)
    counts: dict[str, int] = {}
    for scene in story.scenes:
        for name in scene.characters:
            counts[name] = counts.get(name, 0) + 1
    return max(counts, key=counts.get)


def write_variants() -> None:
    WEAK.mkdir(exist_ok=True)
    for path in sorted(GOLD.glob("*.txt")):
        meta, chapters = load_gold(path)
        name = main_character(chapters)
        made = {"flat": flat(chapters), "static": static(chapters, name), "uneven": uneven(chapters)}
        for weakness, texts in made.items():
            header = {
                "original": path.stem,
                "weakness": weakness,
                **({"character": name} if weakness == "static" else {}),
            }
            body = "\n@@\n".join(texts)
            (WEAK / f"{path.stem}.{weakness}.txt").write_text(f"---\n{json.dumps(header)}\n---\n{body}\n")
    print(f"wrote {len(list(WEAK.glob('*.txt')))} weak variants to {WEAK}")


def rules(analysis) -> set[str]:
    return {s["type"] for s in analysis.enhancement["suggestions"]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--words", type=int, default=100_000, help="words of the speed novel")
    parser.add_argument("--write-variants", action="store_true", help="regenerate the weak variants first")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.write_variants or not WEAK.is_dir():
        write_variants()
    originals = {
        p.stem: analyze_story(story_from_texts(p.stem, load_gold(p)[1])) for p in sorted(GOLD.glob("*.txt"))
    }
    pairs_overall = pairs_target = wins_overall = wins_target = 0
    fired_ok = fired_total = 0
    print("story                          overall  coher visual  chdev pacing emotion  rules")
    for name, analysis in originals.items():
        s = analysis.story_scores()
        print(
            f"{name:30} {s['overall']:.3f}    {s['narrative_coherence']:.2f}  {s['visual_potential']:.2f}   "
            f"{s['character_development']:.2f}  {s['pacing']:.2f}   {s['emotional_impact']:.2f}   "
            f"{','.join(sorted(rules(analysis))) or '-'}"
        )
        fired_total += 1
        fired_ok += not rules(analysis)
    for path in sorted(WEAK.glob("*.txt")):
        meta, chapters = load_weak(path)
        analysis = analyze_story(story_from_texts(path.stem, chapters))
        original = originals[meta["original"]].story_scores()
        s = analysis.story_scores()
        target = TARGET[meta["weakness"]]
        pairs_overall += 1
        pairs_target += 1
        wins_overall += s["overall"] < original["overall"]
        wins_target += s[target] < original[target]
        expected = RULE.get(meta["weakness"])
        if expected:
            fired_total += 1
            fired_ok += expected in rules(analysis)
        print(
            f"{path.stem:30} {s['overall']:.3f}    {s['narrative_coherence']:.2f}  {s['visual_potential']:.2f}   "
            f"{s['character_development']:.2f}  {s['pacing']:.2f}   {s['emotional_impact']:.2f}   "
            f"{','.join(sorted(rules(analysis))) or '-'}"
            + (f"   {target} {original[target]:.2f} -> {s[target]:.2f}" if args.verbose else "")
        )
    print(
        f"\npairwise ranking accuracy, overall: {wins_overall}/{pairs_overall} = {wins_overall / pairs_overall:.2f}"
        f"; targeted score: {wins_target}/{pairs_target} = {wins_target / pairs_target:.2f} (target >= 0.9)"
    )
    print(
        f"enhancement rules: {fired_ok}/{fired_total} stories as expected (fire on static -> "
        "character_development and uneven -> pacing, none on originals)"
    )
    speed(args.words)
    return 0


def speed(words: int) -> None:
    texts = [c for p in sorted(GOLD.glob("*.txt")) for c in load_gold(p)[1]]
    per = sum(len(t.split()) for t in texts)
    chapters, chapter, count = [], [], 0
    while count < words:  # chapters of about 3,000 words
        for text in texts:
            chapter.append(text)
            count += len(text.split())
            if sum(len(c.split()) for c in chapter) >= 3000:
                chapters.append("\n\n* * *\n\n".join(chapter))
                chapter = []
    if chapter:
        chapters.append("\n\n* * *\n\n".join(chapter))
    cpu = time.process_time()
    story = story_from_texts("novel", chapters)
    extract_s = time.process_time() - cpu
    cpu = time.process_time()
    analysis = analyze_story(story)
    analyse_s = time.process_time() - cpu
    n = analysis.insights["counts"]["words"]
    print(
        f"\nspeed on a {n:,}-word novel ({len(chapters)} chapters, {len(story.scenes)} scenes; gold texts of {per} "
        f"words repeated), one thread, CPU seconds:"
    )
    print(
        f"  analysis (scores, pacing, insights, suggestions, rules): {analyse_s:.2f} s = {n / analyse_s:,.0f} "
        f"words/s (target: 100,000 words < 10 s)"
    )
    print(
        f"  reference, builtin scene extraction of the same text: {extract_s:.2f} s = {n / extract_s:,.0f} words/s;"
        f" analysis/extraction time ratio {analyse_s / extract_s:.2f}"
    )
    print(f"  both (a story never extracted): {analyse_s + extract_s:.2f} s")
    stories = [story_from_texts(p.stem, load_gold(p)[1]) for p in sorted(GOLD.glob("*.txt"))]
    rounds = 50
    cpu = time.process_time()
    for _ in range(rounds):
        for story in stories:
            analyze_story(story)
    per_story = (time.process_time() - cpu) / (rounds * len(stories))
    print(
        f"  gold stories (~{per // len(stories)} words, 3-4 chapters each): {1 / per_story:,.0f} stories per CPU-second"
    )


if __name__ == "__main__":
    sys.exit(main())
