#!/usr/bin/env python
"""Quality and speed of the text analyzers on the project's gold set (scripts/bench_extract_gold/).

Each gold chapter is a text file: a JSON header between `---` lines (characters with their aliases, each
scene's dominant emotion, in order), then the text, with a line `%%` where a new scene starts. Prints:

- scene breaks: precision, recall, F1 (a predicted break within two sentences of a gold one counts)
- characters: recall (a gold character found under any of its names) and alias-merge accuracy (each gold
  alias found in the same predicted character as the canonical name)
- emotions: accuracy of each gold scene's dominant emotion (the predicted scene that overlaps it most;
  its strongest character emotion)
- speed: chapters per CPU-second (and per wall second) on a chapter of about 5,000 words (the gold
  chapters repeated), one thread; CPU time because wall time on a shared machine is noise

    .venv/bin/python scripts/bench_extract.py [--analyzer builtin|llm] [--text-model NAME] [--words 5000]

For `llm`: the same quality figures, tokens per second and the share of outputs that parsed as JSON.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from enchant_worker.text.analysis import ProcessingOptions  # noqa: E402
from enchant_worker.text.registry import default_analyzers  # noqa: E402

GOLD = Path(__file__).resolve().parent / "bench_extract_gold"
BREAK_TOLERANCE_SENTENCES = 2
_SENTENCE_START = re.compile(r"(?:(?<=[.!?…])[\"'”’)]*\s+|\n+)(?=[\"'“‘(]?[A-Z0-9#*])")


def load(path: Path) -> dict:
    raw = path.read_text()
    _, header, body = raw.split("---\n", 2)
    meta = json.loads(header)
    text, breaks = "", []
    for line in body.splitlines(keepends=True):
        if line.strip() == "%%":  # stands for a paragraph break where a scene starts
            breaks.append(len(text) + 1)
            text += "\n"
            continue
        text += line
    return {"name": path.stem, "text": text.strip("\n"), "breaks": breaks, **meta}


def sentence_index(text: str):
    starts = [0] + [m.end() for m in _SENTENCE_START.finditer(text)]
    return lambda offset: bisect.bisect_right(starts, offset) - 1


def score_breaks(gold: list[int], predicted: list[int], index) -> tuple[int, int, int]:
    g = [index(o) for o in gold]
    p = [index(o) for o in predicted]
    matched, used = 0, set()
    for pi in p:
        hit = next(
            (k for k, gi in enumerate(g) if k not in used and abs(gi - pi) <= BREAK_TOLERANCE_SENTENCES), None
        )
        if hit is not None:
            used.add(hit)
            matched += 1
    return matched, len(p), len(g)


TITLE_WORDS = {
    "lord",
    "lady",
    "captain",
    "queen",
    "king",
    "brother",
    "sister",
    "aunt",
    "uncle",
    "old",
    "father",
    "mother",
    "mr.",
    "mrs.",
    "miss",
    "dr.",
    "doctor",
    "detective",
    "sir",
    "the",
}


def bare(form: str) -> str:
    """A name without its leading titles, lower-case ('Lord Edric Vale' -> 'edric vale')."""
    words = form.lower().split()
    while len(words) > 1 and words[0] in TITLE_WORDS:
        words = words[1:]
    return " ".join(words)


def dominant(scene) -> str | None:
    if not scene.emotions:
        return None
    return max(scene.emotions, key=lambda e: e.intensity).primary_emotion


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--analyzer", default="builtin")
    parser.add_argument("--words", type=int, default=5000, help="words of the speed chapter")
    parser.add_argument("--rounds", type=int, default=20, help="analyses timed for the speed figure")
    parser.add_argument(
        "--text-model", help="the llm analyzer's model (default: default_text, else tiny-text)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.analyzer == "llm":
        from enchant_worker.config import get_settings
        from enchant_worker.text.llm import llm_analyzer

        analyzer = llm_analyzer(get_settings(), args.text_model)
    else:
        analyzer = default_analyzers().get(args.analyzer)
    chapters = [load(p) for p in sorted(GOLD.glob("*.txt"))]

    tp = n_pred = n_gold = 0
    chars_found = chars_total = aliases_ok = aliases_total = 0
    emotions_ok = emotions_total = 0
    rows = []
    for chapter in chapters:
        result = analyzer.analyze_chapter(chapter["text"], ProcessingOptions())
        # 1. Breaks
        predicted = [s.start for s in result.scenes[1:]]
        m, p, g = score_breaks(chapter["breaks"], predicted, sentence_index(chapter["text"]))
        tp, n_pred, n_gold = tp + m, n_pred + p, n_gold + g
        # 2. Characters and aliases
        found_sets = [{bare(f) for f in (c.name, *c.aliases)} for c in result.characters]
        c_found = 0
        for name, aliases in chapter["characters"].items():
            name, aliases = bare(name), [bare(a) for a in aliases if bare(a) != bare(name)]
            forms = {name, *aliases}
            home = next((s for s in found_sets if s & forms), None)
            chars_total += 1
            if home is not None:
                c_found += 1
            for alias in aliases:
                aliases_total += 1
                canonical_home = next((s for s in found_sets if name in s), None)
                alias_home = next((s for s in found_sets if alias in s), None)
                if canonical_home is not None and canonical_home is alias_home:
                    aliases_ok += 1
        chars_found += c_found
        # 3. Emotions: gold scene k spans [break k-1, break k)
        bounds = [0, *chapter["breaks"], len(chapter["text"])]
        e_ok = 0
        for k, gold_emotion in enumerate(chapter["emotions"]):
            lo, hi = bounds[k], bounds[k + 1]
            best = max(result.scenes, key=lambda s: min(hi, s.end) - max(lo, s.start), default=None)
            emotions_total += 1
            if best is not None and dominant(best) == gold_emotion:
                e_ok += 1
        emotions_ok += e_ok
        rows.append(
            (
                chapter["name"],
                len(result.scenes),
                len(chapter["emotions"]),
                m,
                p,
                g,
                c_found,
                len(chapter["characters"]),
                e_ok,
                len(chapter["emotions"]),
            )
        )
        if args.verbose:
            print(f"-- {chapter['name']}: {[(c.name, c.aliases) for c in result.characters]}")
            print(f"   emotions: {[dominant(s) for s in result.scenes]} gold {chapter['emotions']}")

    if args.analyzer == "llm":  # speed of a language model is tokens per second; validity of its JSON
        stats = analyzer.stats
        print_quality(
            analyzer,
            chapters,
            tp,
            n_pred,
            n_gold,
            chars_found,
            chars_total,
            aliases_ok,
            aliases_total,
            emotions_ok,
            emotions_total,
            rows,
        )
        print(
            f"llm ({analyzer.spec.name}, {analyzer._load().device})  {stats.tokens:,} tokens in "
            f"{stats.seconds:.1f} s: {stats.tokens / max(stats.seconds, 1e-9):.1f} tokens/s; JSON valid "
            f"{stats.valid}/{stats.outputs} ({100 * stats.valid / max(stats.outputs, 1):.0f}%)"
        )
        return 0

    # 4. Speed on a ~5,000-word chapter
    base = "\n\n".join(c["text"].replace("\n%%\n", "\n") for c in chapters)
    words = len(base.split())
    paragraphs = ("\n\n".join([base] * max(1, -(-args.words // words)))).split("\n\n")
    kept, count = [], 0
    for paragraph in paragraphs:  # whole paragraphs until --words is reached
        kept.append(paragraph)
        count += len(paragraph.split())
        if count >= args.words:
            break
    big = "\n\n".join(kept)
    analyzer.analyze_chapter(big)  # warm-up (regex compilation)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(args.rounds):
        analyzer.analyze_chapter(big)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    print_quality(
        analyzer,
        chapters,
        tp,
        n_pred,
        n_gold,
        chars_found,
        chars_total,
        aliases_ok,
        aliases_total,
        emotions_ok,
        emotions_total,
        rows,
    )
    print(
        f"speed             {args.rounds / cpu:.1f} chapters per CPU-second of {len(big.split()):,} words, one "
        f"thread ({1000 * cpu / args.rounds:.1f} ms CPU each; wall {args.rounds / elapsed:.1f}/s on this machine "
        f"now)   (target >= 20)"
    )
    return 0


def print_quality(
    analyzer,
    chapters,
    tp,
    n_pred,
    n_gold,
    chars_found,
    chars_total,
    aliases_ok,
    aliases_total,
    emotions_ok,
    emotions_total,
    rows,
) -> None:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"analyzer {analyzer.name} on {len(chapters)} gold chapters ({GOLD.name}/)")
    print(
        f"{'chapter':24} {'scenes':>6} {'gold':>4} {'breaks ok/pred/gold':>20} {'chars':>7} {'emotions':>8}"
    )
    for name, scenes, gold_scenes, m, p, g, cf, ct, eo, et in rows:
        print(
            f"{name:24} {scenes:>6} {gold_scenes:>4} {f'{m}/{p}/{g}':>20} {f'{cf}/{ct}':>7} {f'{eo}/{et}':>8}"
        )
    print()
    print(
        f"scene breaks      precision {precision:.2f}  recall {recall:.2f}  F1 {f1:.2f}   (target F1 >= 0.8)"
    )
    print(
        f"characters        recall {chars_found / chars_total:.2f} ({chars_found}/{chars_total})   "
        f"(target >= 0.9)"
    )
    print(f"alias merges      accuracy {aliases_ok / aliases_total:.2f} ({aliases_ok}/{aliases_total})")
    print(f"dominant emotion  accuracy {emotions_ok / emotions_total:.2f} ({emotions_ok}/{emotions_total})")


if __name__ == "__main__":
    raise SystemExit(main())
