"""EPUB files made by the tests (ebooklib writes them; no file is shipped)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path


def make_epub(path: Path, chapters: list[tuple[str, str]], title: str = "A Test Book") -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title(title)
    book.set_language("en")
    items = []
    for i, (heading, text) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"ch{i}.xhtml", lang="en")
        paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        item.content = f"<html><body><h1>{heading}</h1>{paragraphs}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def with_drm(source: Path, target: Path) -> Path:
    """The EPUB with an encryption.xml that encrypts a content document (as DRM does)."""
    encryption = (
        b'<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
        b'<enc:CipherReference URI="EPUB/ch1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("META-INF/encryption.xml", encryption)
    target.write_bytes(out.getvalue())
    return target
