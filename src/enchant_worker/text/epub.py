"""EPUB → chapters, read with ebooklib (EPUB 2 and 3): one chapter per spine item that has text.

Refused with a clear message: a broken zip, a file without an OPF package, and DRM (an
`META-INF/encryption.xml` that encrypts content documents, or Adobe's `rights.xml`). Font obfuscation
alone (encryption.xml naming only fonts) is not DRM and is read.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
import zipfile
from xml.etree import ElementTree

from enchant_worker.text.errors import UnreadableBook

MIN_ITEM_WORDS = 20
_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "tr", "section", "br"}
_HEADINGS = ("h1", "h2", "h3")
_FONT_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")
_XENC = "{http://www.w3.org/2001/04/xmlenc#}"


def read_epub(data: bytes, name: str = "the EPUB"):
    """(title, chapters, notes)."""
    from enchant_worker.text.ingest import Chapter

    _check_container(data, name)
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise UnreadableBook(f"reading EPUB needs the ebooklib package: {exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises many kinds on malformed packages
        raise UnreadableBook(f"{name} is not a readable EPUB: {type(exc).__name__}: {exc}") from None
    titles = book.get_metadata("DC", "title")
    title = titles[0][0].strip() if titles and titles[0][0] else None
    toc_titles = _toc_titles(book.toc)
    chapters: list = []
    notes: list[str] = []
    for item_id, _linear in book.spine:
        item = book.get_item_with_id(item_id)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        if isinstance(item, epub.EpubNav):
            continue
        heading, text = html_text(item.get_content())
        words = len(text.split())
        if words == 0 or (words < MIN_ITEM_WORDS and heading is None):
            if words:
                notes.append(f"skipped spine item {item.get_name()} ({words} words, no heading)")
            continue
        if heading is not None and text.startswith(heading):
            text = text[len(heading) :].lstrip("\n")
        chapter_title = heading or toc_titles.get(item.get_name().split("#")[0])
        chapters.append(Chapter(len(chapters) + 1, chapter_title, text, f"spine item {item.get_name()}"))
    if not chapters:
        raise UnreadableBook(f"{name} has no text in its spine (only images or empty pages?)")
    return title, chapters, notes


def _check_container(data: bytes, name: str) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UnreadableBook(f"{name} is not a valid EPUB: its zip container is broken ({exc})") from None
    if bad is not None:
        raise UnreadableBook(f"{name} is not a valid EPUB: its zip member {bad} is corrupt")
    names = set(archive.namelist())
    if "META-INF/container.xml" not in names:
        raise UnreadableBook(f"{name} is a zip but not an EPUB: it has no META-INF/container.xml")
    if "META-INF/rights.xml" in names:
        raise UnreadableBook(
            f"{name} is DRM-protected (META-INF/rights.xml); only DRM-free EPUBs can be read"
        )
    if "META-INF/encryption.xml" in names:
        encrypted = _encrypted_uris(archive.read("META-INF/encryption.xml"))
        content = [u for u in encrypted if not u.lower().endswith(_FONT_SUFFIXES)]
        if content:
            raise UnreadableBook(
                f"{name} is DRM-protected: {len(content)} content file(s) are encrypted "
                f"(e.g. {content[0]}); only DRM-free EPUBs can be read"
            )


def _encrypted_uris(xml: bytes) -> list[str]:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return ["META-INF/encryption.xml (unreadable)"]
    return [ref.get("URI", "") for ref in root.iter(f"{_XENC}CipherReference")]


def _toc_titles(toc) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in toc or ():
        if isinstance(entry, tuple | list):
            section, children = entry[0], entry[1]
            if getattr(section, "href", None):
                found.setdefault(section.href.split("#")[0], section.title)
            found.update({k: v for k, v in _toc_titles(children).items() if k not in found})
        elif getattr(entry, "href", None):
            found.setdefault(entry.href.split("#")[0], entry.title)
    return found


def html_text(content: bytes) -> tuple[str | None, str]:
    """(first heading, text) of an XHTML document: one paragraph per block element, blank lines between."""
    from lxml import html

    try:
        root = html.fromstring(content)
    except Exception:  # lxml raises ParserError for empty documents
        return None, ""
    for bad in root.xpath("//script|//style|//head"):
        bad.drop_tree()
    heading = None
    for tag in _HEADINGS:
        found = root.xpath(f"//{tag}")
        if found:
            heading = " ".join(found[0].text_content().split()) or None
            break
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        if text:
            paragraphs.append(text)
        buffer.clear()

    def walk(element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        block = tag.lower() in _BLOCKS
        if block:
            flush()
        if element.text and tag:
            buffer.append(element.text)
        for child in element:
            walk(child)
            if child.tail:
                buffer.append(child.tail)
        if block:
            flush()

    body = root.find("body")
    walk(body if body is not None else root)
    flush()
    text = unicodedata.normalize("NFC", "\n\n".join(paragraphs))
    return heading, re.sub(r"\n{3,}", "\n\n", text)
