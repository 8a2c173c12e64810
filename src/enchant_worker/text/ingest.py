"""Books in: plain text, Markdown or EPUB bytes → a `Book` of chapters, the text kept exactly.

    book = read_book(data, filename="moby.txt")       # or read_file(path, max_bytes=...)
    book.chapters[0].title, book.chapters[0].text, book.report()

1. Size: a file over the limit is refused before it is read (`BookTooLarge` names the limit).
2. Format: EPUB by its zip signature, Markdown by its extension or its `#` headings, else plain text.
3. Text: byte-order marks honoured; UTF-8 when it decodes; otherwise each line that is not UTF-8 is
   read in the encoding charset-normalizer finds for those lines (cp1252, latin-1 as the last resort),
   and the report counts them. Line ends become `\\n`, Unicode is NFC. Nothing is dropped silently.
4. Chapters: headings such as "Chapter 12", "CHAPTER XII. The End", "Prologue", Markdown `#`/`##`, or
   EPUB spine items; a file without headings is one chapter. Text before the first heading becomes the
   book's title when it is a few short lines, else a chapter of its own.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from enchant_worker.text.errors import BookTooLarge, UnreadableBook

DEFAULT_MAX_BYTES = 32 * 2**20  # a long novel is 1-4 MiB of text; EPUBs with images are larger
BINARY_SAMPLE_BYTES = 65_536
BINARY_CONTROL_RATIO = 0.05  # more control characters than this in the sample: not text
MAX_HEADING_CHARS = 100
MIN_GUESS_BYTES = 2048  # fewer non-UTF-8 bytes than this: cp1252, not a guess
TITLE_PREAMBLE_MAX_LINES = 3
TITLE_PREAMBLE_MAX_CHARS = 120
MIN_EPUB_ITEM_WORDS = 20  # spine items shorter than this without a heading (cover, title page) are skipped
FORMATS = ("text", "markdown", "epub")

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty"
)
_CHAPTER_HEADING = re.compile(
    rf"^[ \t]*(?:chapter|chap\.)[ \t]+(?P<num>\d+|[ivxlcdm]+|(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))?)\b"
    r"[ \t]*[.:\-–—]?[ \t]*(?P<rest>.*?)[ \t]*$",
    re.IGNORECASE,
)
_NAMED_HEADING = re.compile(
    r"^[ \t]*(?P<name>prologue|epilogue|interlude|afterword|foreword)\b[ \t]*[.:\-–—]?"
    r"[ \t]*(?P<rest>.*?)[ \t]*$",
    re.IGNORECASE,
)
_MARKDOWN_HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<title>.+?)[ \t#]*$")
_SUFFIX_FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".epub": "epub",
    ".txt": "text",
    ".text": "text",
}


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str | None
    text: str
    source: str = ""  # where it came from: 'heading line 12', 'spine item ch01.xhtml', 'whole file'

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass
class Book:
    title: str | None
    format: str
    encoding: str
    chapters: list[Chapter]
    source_hash: str  # sha256 of the file's bytes: the same file ingested twice is one book
    notes: list[str] = field(default_factory=list)  # what the reader decided (encodings, skipped items)

    def report(self) -> dict:
        return {
            "title": self.title,
            "format": self.format,
            "encoding": self.encoding,
            "source_hash": self.source_hash,
            "notes": list(self.notes),
            "chapters": [
                {"number": c.number, "title": c.title, "words": c.words, "source": c.source}
                for c in self.chapters
            ],
        }


def read_file(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES, fmt: str | None = None) -> Book:
    """A book from a file; the size is checked before anything is read."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableBook(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise BookTooLarge(
            f"{path.name} is {size:,} bytes; the ingest limit is {max_bytes:,} bytes "
            "(ENCHANT_INGEST_MAX_BYTES); split the book or raise the limit"
        )
    return read_book(path.read_bytes(), filename=path.name, max_bytes=max_bytes, fmt=fmt)


def read_limited(stream: IO[bytes], max_bytes: int, name: str = "the upload") -> bytes:
    """Reads a stream in chunks, refusing it as soon as it passes `max_bytes` (memory stays bounded)."""
    chunks, total = [], 0
    while chunk := stream.read(1 << 20):
        total += len(chunk)
        if total > max_bytes:
            raise BookTooLarge(
                f"{name} is larger than the ingest limit of {max_bytes:,} bytes "
                "(ENCHANT_INGEST_MAX_BYTES); split the book or raise the limit"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def read_book(
    data: bytes, *, filename: str = "", max_bytes: int = DEFAULT_MAX_BYTES, fmt: str | None = None
) -> Book:
    """A book from bytes. `fmt` ('text', 'markdown', 'epub') overrides the detection."""
    name = filename or "the file"
    # 1. Size
    if len(data) > max_bytes:
        raise BookTooLarge(
            f"{name} is {len(data):,} bytes; the ingest limit is {max_bytes:,} bytes "
            "(ENCHANT_INGEST_MAX_BYTES); split the book or raise the limit"
        )
    if not data.strip():
        raise UnreadableBook(f"{name} is empty: there is no text to ingest")
    # 2. Format
    if fmt is not None and fmt not in FORMATS:
        raise UnreadableBook(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    source_hash = hashlib.sha256(data).hexdigest()
    is_zip = data[:4] == b"PK\x03\x04"
    fmt = fmt or ("epub" if is_zip else _SUFFIX_FORMATS.get(Path(filename).suffix.lower()))
    if fmt == "epub":
        from enchant_worker.text.epub import read_epub

        title, chapters, notes = read_epub(data, name)
        return Book(title, "epub", "utf-8", chapters, source_hash, notes)
    if is_zip:
        raise UnreadableBook(f"{name} is a zip archive, not text; an EPUB is read as such (format 'epub')")
    # 3. Text
    text, encoding, notes = decode(data, name)
    fmt = fmt or ("markdown" if _looks_markdown(text) else "text")
    # 4. Chapters
    title, chapters, more = split_chapters(text, markdown=fmt == "markdown")
    return Book(
        title or (Path(filename).stem.replace("_", " ").strip() or None),
        fmt,
        encoding,
        chapters,
        source_hash,
        notes + more,
    )


def decode(data: bytes, name: str = "the file") -> tuple[str, str, list[str]]:
    """(text, encoding, notes): `data` as NFC text with `\\n` line ends; UnreadableBook for binary data."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _normal(data.decode(codec)), codec, []
            except UnicodeDecodeError as exc:
                raise UnreadableBook(
                    f"{name} starts with a {codec} byte-order mark but is not {codec} (byte {exc.start})"
                ) from None
    _refuse_binary(data, name)
    try:
        return _normal(data.decode("utf-8")), "utf-8", []
    except UnicodeDecodeError:
        pass
    # Mixed or legacy: keep every UTF-8 line, read the others in the encoding found for them.
    lines = data.splitlines(keepends=True)
    bad = [line for line in lines if not _is_utf8(line)]
    legacy = _guess_legacy(b"".join(bad))
    out = [line.decode("utf-8") if _is_utf8(line) else line.decode(legacy) for line in lines]
    note = (
        f"{len(bad)} of {len(lines)} lines were not UTF-8 and were read as {legacy}"
        if len(bad) < len(lines)
        else f"the file is not UTF-8; read as {legacy}"
    )
    return _normal("".join(out)), legacy if len(bad) == len(lines) else f"utf-8+{legacy}", [note]


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _guess_legacy(sample: bytes) -> str:
    """The encoding of the non-UTF-8 lines: charset-normalizer's guess when there are enough of them to
    guess from, else cp1252 (Western text), else latin-1 (which decodes any byte)."""
    candidates = []
    try:
        from charset_normalizer import from_bytes

        # a few lines are too little to tell cp1250 from cp1252: guess only from a fair sample
        best = from_bytes(sample).best() if len(sample) >= MIN_GUESS_BYTES else None
        if best is not None and best.encoding and not best.encoding.startswith("utf"):
            candidates.append(best.encoding)
    except ImportError:  # pragma: no cover - a dependency, but a guess is not worth failing over
        pass
    for encoding in (*candidates, "cp1252", "latin-1"):
        try:
            sample.decode(encoding)
            return codecs.lookup(encoding).name
        except (UnicodeDecodeError, LookupError):
            continue
    return "latin-1"  # pragma: no cover - latin-1 decodes everything


def _refuse_binary(data: bytes, name: str) -> None:
    sample = data[:BINARY_SAMPLE_BYTES]
    nul = sample.find(b"\x00")
    if nul >= 0:
        raise UnreadableBook(
            f"{name} looks binary (a NUL byte at offset {nul}), not a book; "
            "give plain text, Markdown or an EPUB"
        )
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if controls > BINARY_CONTROL_RATIO * len(sample):
        raise UnreadableBook(
            f"{name} looks binary ({controls} control bytes in its first {len(sample):,}), "
            "not a book; give plain text, Markdown or an EPUB"
        )


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).lstrip("\ufeff")


def _looks_markdown(text: str) -> bool:
    return sum(1 for line in text.split("\n") if _MARKDOWN_HEADING.match(line)) >= 1 and not any(
        _CHAPTER_HEADING.match(line) for line in text.split("\n")[:2000] if len(line) <= MAX_HEADING_CHARS
    )


def split_chapters(text: str, *, markdown: bool = False) -> tuple[str | None, list[Chapter], list[str]]:
    """(book title or None, chapters, notes)."""
    lines = text.split("\n")
    headings = _markdown_headings(lines) if markdown else []
    if not headings:
        headings = [(i, title) for i, line in enumerate(lines) if (title := _heading_title(line)) is not None]
    notes: list[str] = []
    if not headings:
        body = text.strip("\n")
        return (
            None,
            [Chapter(1, None, body, "whole file (no chapter headings found)")],
            ["no chapter headings found: the whole text is one chapter"],
        )
    title = None
    preamble = [line for line in lines[: headings[0][0]] if line.strip()]
    chapters: list[Chapter] = []
    if preamble:
        if len(preamble) <= TITLE_PREAMBLE_MAX_LINES and all(
            len(p) <= TITLE_PREAMBLE_MAX_CHARS for p in preamble
        ):
            title = _strip_markdown(preamble[0].strip())
            notes.append(
                f"the lines before the first heading were taken as the title: {' / '.join(preamble)}"
            )
        else:
            chapters.append(
                Chapter(
                    1,
                    "Opening",
                    "\n".join(lines[: headings[0][0]]).strip("\n"),
                    "text before the first heading",
                )
            )
            notes.append("the text before the first heading became the chapter 'Opening'")
    for k, (start, heading) in enumerate(headings):
        end = headings[k + 1][0] if k + 1 < len(headings) else len(lines)
        body = "\n".join(lines[start + 1 : end]).strip("\n")
        chapters.append(Chapter(len(chapters) + 1, heading, body, f"heading at line {start + 1}"))
    empty = [c.number for c in chapters if not c.text.strip()]
    if empty:
        notes.append(f"chapters with a heading but no text: {', '.join(map(str, empty))}")
    return title, chapters, notes


def _heading_title(line: str) -> str | None:
    if len(line) > MAX_HEADING_CHARS or not line.strip():
        return None
    match = _CHAPTER_HEADING.match(line) or _NAMED_HEADING.match(line)
    if match is None:
        return None
    rest = match.group("rest").strip()
    if rest and rest[-1] in ".,;" and len(rest.split()) > 8:  # a sentence that starts with "Chapter one ..."
        return None
    return line.strip()


def _markdown_headings(lines: list[str]) -> list[tuple[int, str]]:
    """The chapter headings of Markdown: the top level used more than once (a lone `#` above `##`
    headings is the book's title), code fences skipped."""
    found: list[tuple[int, int, str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        match = _MARKDOWN_HEADING.match(line)
        if match and len(match.group("level")) <= 2:
            found.append((i, len(match.group("level")), match.group("title").strip()))
    if not found:
        return []
    levels = sorted({level for _, level, _ in found})
    top = levels[0]
    if sum(1 for _, lv, _ in found if lv == top) == 1 and len(levels) > 1:
        top = levels[1]
    return [(i, title) for i, level, title in found if level == top]


def _strip_markdown(line: str) -> str:
    match = _MARKDOWN_HEADING.match(line)
    return match.group("title").strip() if match else line.strip("*_ ")
