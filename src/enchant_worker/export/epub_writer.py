"""EPUB 3: package document with title, author, language, identifier and modification time; a navigation
document; one XHTML file per chapter; images with alt text (the scene summaries); the first illustration
as the cover. Images are streamed into the archive one at a time. Passes epubcheck with no warnings."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from html import escape
from typing import BinaryIO

from enchant_worker.export.document import Book, Chapter, Figure, Paragraph
from enchant_worker.export.images import Picture
from enchant_worker.export.style import BASE_CSS

SUFFIX, MEDIA_TYPE = ".epub", "application/epub+zip"

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="EPUB/package.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>
"""


def _xhtml(book: Book, title: str, body: str, *, nav: bool = False) -> str:
    epub_ns = ' xmlns:epub="http://www.idpf.org/2007/ops"' if nav else ""
    lang = escape(book.language)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml"{epub_ns} lang="{lang}" xml:lang="{lang}">\n'
        f'<head>\n<meta charset="UTF-8"/>\n<title>{escape(title)}</title>\n'
        f'<link rel="stylesheet" type="text/css" href="style.css"/>\n</head>\n<body>\n{body}</body>\n</html>\n'
    )


def _chapter_file(chapter: Chapter) -> str:
    return (
        f"chapter-{chapter.number:05d}.xhtml"
        if chapter.number >= 0
        else f"chapter-m{-chapter.number:05d}.xhtml"
    )


def _image_name(picture: Picture) -> str:
    return f"images/{picture.sha256}{picture.suffix}"


def write(book: Book, out: BinaryIO, progress: Callable[[int, int], None]) -> None:
    images: dict[str, Picture] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("EPUB/style.css", BASE_CSS + "\n" + book.css + "\n")

        def add_image(picture: Picture) -> str:
            name = _image_name(picture)
            if name not in images:
                zf.write(picture.path, f"EPUB/{name}", compress_type=zipfile.ZIP_STORED)
                images[name] = picture
            return name

        if book.cover is not None:
            add_image(book.cover)
        zf.writestr("EPUB/title.xhtml", _xhtml(book, book.title, _title_page(book)))
        for index, chapter in enumerate(book.chapters):
            zf.writestr(
                f"EPUB/{_chapter_file(chapter)}",
                _xhtml(book, chapter.heading, _chapter_body(chapter, add_image)),
            )
            progress(index + 1, len(book.chapters))
        zf.writestr("EPUB/nav.xhtml", _xhtml(book, "Contents", _nav(book), nav=True))
        zf.writestr("EPUB/package.opf", _package(book, images))


def _title_page(book: Book) -> str:
    parts = [
        f'<section epub:type="titlepage" xmlns:epub="http://www.idpf.org/2007/ops">\n'
        f'<h1 class="title">{escape(book.title)}</h1>\n<p class="author">{escape(book.author)}</p>\n'
    ]
    if book.description:
        parts.append(f"<p>{escape(book.description)}</p>\n")
    if book.notes:
        parts.append('<aside class="notes">\n<h2>Notes on this export</h2>\n<ul>\n')
        parts += [f"<li>{escape(n)}</li>\n" for n in book.notes]
        parts.append("</ul>\n</aside>\n")
    parts.append("</section>\n")
    return "".join(parts)


def _chapter_body(chapter: Chapter, add_image: Callable[[Picture], str]) -> str:
    parts = [f'<section id="chapter-{chapter.number}">\n<h2>{escape(chapter.heading)}</h2>\n']
    group: str | None = None
    for block in chapter.blocks:
        wanted = (
            {"gallery": "gallery", "panel": "panels"}.get(block.style) if isinstance(block, Figure) else None
        )
        if wanted != group:
            if group:
                parts.append("</div>\n")
            if wanted:
                parts.append(f'<div class="{wanted}">\n')
            group = wanted
        if isinstance(block, Paragraph):
            parts.append(f"<p>{escape(block.text)}</p>\n")
        else:
            pic = block.picture
            parts.append(
                f'<figure class="{block.style}">\n<img src="{add_image(pic)}" alt="{escape(pic.alt)}" '
                f'width="{pic.width}" height="{pic.height}"/>\n'
            )
            if block.caption:
                parts.append(f"<figcaption>{escape(block.caption)}</figcaption>\n")
            parts.append("</figure>\n")
    if group:
        parts.append("</div>\n")
    parts.append("</section>\n")
    return "".join(parts)


def _nav(book: Book) -> str:
    items = "".join(f'<li><a href="{_chapter_file(c)}">{escape(c.heading)}</a></li>\n' for c in book.chapters)
    return (
        f'<nav epub:type="toc" id="toc">\n<h1>Contents</h1>\n<ol>\n'
        f'<li><a href="title.xhtml">{escape(book.title)}</a></li>\n{items}</ol>\n</nav>\n'
        f'<nav epub:type="landmarks" id="landmarks" hidden="hidden">\n<h2>Landmarks</h2>\n<ol>\n'
        f'<li><a epub:type="titlepage" href="title.xhtml">Title page</a></li>\n'
        + (
            f'<li><a epub:type="bodymatter" href="{_chapter_file(book.chapters[0])}">Start</a></li>\n'
            if book.chapters
            else ""
        )
        + "</ol>\n</nav>\n"
    )


def _package(book: Book, images: dict[str, Picture]) -> str:
    manifest = [
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
        '<item id="css" href="style.css" media-type="text/css"/>',
        '<item id="title" href="title.xhtml" media-type="application/xhtml+xml"/>',
    ]
    spine = ['<itemref idref="title"/>']
    for c in book.chapters:
        ident = _chapter_file(c).removesuffix(".xhtml")
        manifest.append(f'<item id="{ident}" href="{_chapter_file(c)}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="{ident}"/>')
    cover = _image_name(book.cover) if book.cover is not None else None
    for name, pic in images.items():
        props = ' properties="cover-image"' if name == cover else ""
        manifest.append(
            f'<item id="img-{pic.sha256[:16]}" href="{name}" media-type="{pic.media_type}"{props}/>'
        )
    description = f"<dc:description>{escape(book.description)}</dc:description>\n" if book.description else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id" '
        f'xml:lang="{escape(book.language)}">\n'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f'<dc:identifier id="book-id">{escape(book.identifier)}</dc:identifier>\n'
        f"<dc:title>{escape(book.title)}</dc:title>\n"
        f"<dc:creator>{escape(book.author)}</dc:creator>\n"
        f"<dc:language>{escape(book.language)}</dc:language>\n{description}"
        f'<meta property="dcterms:modified">{book.modified}</meta>\n'
        + (f'<meta name="cover" content="img-{book.cover.sha256[:16]}"/>\n' if book.cover is not None else "")
        + "</metadata>\n<manifest>\n"
        + "\n".join(manifest)
        + "\n</manifest>\n"
        + "<spine>\n"
        + "\n".join(spine)
        + "\n</spine>\n</package>\n"
    )
