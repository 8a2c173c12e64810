"""CLIP tokenizer files written by our own code, so that no tokenizer is ever downloaded.

The vocabulary is byte-level BPE like CLIP's: the 256 byte symbols, the same with the end-of-word
marker `</w>`, the two special tokens, and merges that spell a fixed list of common words whole. Any
text tokenizes (unknown words fall back to single characters); the common words take one token each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"

# Words that get a single token each. The list is part of the tiny model's identity: changing it
# changes the token ids, so keep it append-only.
COMMON_WORDS = (
    "a an the of and in on at with by to from for is her his their its".split()
    + "portrait castle forest city night dawn dusk rain storm sea ship tower".split()
    + "woman man girl boy knight queen king dragon wizard witch sword light".split()
    + "dark red blue green gold silver white black old young tall small".split()
    + "happy sad angry afraid calm joy fear anger sadness surprise love".split()
    + "expression intense dramatic facial subtle nuanced hints smile tears".split()
    + "eyes hair face hands standing sitting walking looking painting art".split()
    + "style detailed cinematic lighting illustration fantasy scene room".split()
    + "blurry low quality worst text watermark".split()
)


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def build_vocab_and_merges(words: Sequence[str] = COMMON_WORDS) -> tuple[dict[str, int], list[str]]:
    """The vocabulary (token → id) and the ranked merges that spell each word in `words` whole."""
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    seen_merges: set[str] = set()
    for word in dict.fromkeys(words):  # ordered, without duplicates
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            merge = f"{current} {piece}"
            current = current + piece
            if merge not in seen_merges:
                seen_merges.add(merge)
                merges.append(merge)
                vocab_list.append(current)
    vocab_list = list(dict.fromkeys(vocab_list)) + [BOS_TOKEN, EOS_TOKEN]
    return {token: i for i, token in enumerate(vocab_list)}, merges


def write_tokenizer_files(folder: Path) -> Path:
    """Write `vocab.json` and `merges.txt` into `folder`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def vocab_size() -> int:
    return len(build_vocab_and_merges()[0])
