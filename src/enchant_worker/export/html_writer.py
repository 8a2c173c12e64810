"""HTML: one self-contained file (images inline as data: URLs, styles inline) or, in folder mode, a zip of
an index.html with its images beside it. Nothing refers to anything outside the export."""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Callable
from html import escape
from typing import IO, BinaryIO

from enchant_worker.export.document import Book, Chapter, Figure, Paragraph
from enchant_worker.export.images import Picture
from enchant_worker.export.style import BASE_CSS

SUFFIX, MEDIA_TYPE = ".html", "text/html; charset=utf-8"
FOLDER_SUFFIX, FOLDER_MEDIA_TYPE = ".zip", "application/zip"
B64_CHUNK_BYTES = 3 * 1 << 16  # a multiple of 3: chunks encode without padding in between


def write(book: Book, out: BinaryIO, progress: Callable[[int, int], None], *, folder: bool = False) -> None:
    if not folder:
        _write_html(book, out, progress, image=lambda pic, f: _inline(pic, f))
        return
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        written: set[str] = set()
        for figure in (f for c in book.chapters for f in c.figures):  # images first, one at a time
            name = f"images/{figure.picture.sha256}{figure.picture.suffix}"
            if name not in written:
                zf.write(figure.picture.path, name, compress_type=zipfile.ZIP_STORED)
                written.add(name)

        def image(picture: Picture, f: IO[bytes]) -> None:
            f.write(f"images/{picture.sha256}{picture.suffix}".encode())

        with zf.open("index.html", "w", force_zip64=True) as f:
            _write_html(book, f, progress, image=image)


def _inline(picture: Picture, f: IO[bytes]) -> None:
    f.write(f"data:{picture.media_type};base64,".encode())
    with open(picture.path, "rb") as src:
        while chunk := src.read(B64_CHUNK_BYTES):
            f.write(base64.b64encode(chunk))


def _write_html(
    book: Book,
    f: IO[bytes],
    progress: Callable[[int, int], None],
    image: Callable[[Picture, IO[bytes]], None],
) -> None:
    def w(text: str) -> None:
        f.write(text.encode())

    w(
        f'<!DOCTYPE html>\n<html lang="{escape(book.language)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(book.title)}</title>\n"
        f'<meta name="author" content="{escape(book.author)}">\n'
        f"<style>{BASE_CSS}\n{book.css}</style>\n</head>\n<body>\n"
    )
    w(f'<header>\n<h1 class="title">{escape(book.title)}</h1>\n<p class="author">{escape(book.author)}</p>\n')
    if book.description:
        w(f"<p>{escape(book.description)}</p>\n")
    w("</header>\n")
    if book.notes:
        w('<aside class="notes">\n<h2>Notes on this export</h2>\n<ul>\n')
        w("".join(f"<li>{escape(n)}</li>\n" for n in book.notes))
        w("</ul>\n</aside>\n")
    w('<nav aria-label="Contents">\n<h2>Contents</h2>\n<ol>\n')
    for c in book.chapters:
        w(f'<li><a href="#chapter-{c.number}">{escape(c.heading)}</a></li>\n')
    w("</ol>\n</nav>\n<main>\n")
    for index, chapter in enumerate(book.chapters):
        _chapter(chapter, w, f, image)
        progress(index + 1, len(book.chapters))
    w("</main>\n</body>\n</html>\n")


def _chapter(
    chapter: Chapter, w: Callable[[str], None], f: IO[bytes], image: Callable[[Picture, IO[bytes]], None]
) -> None:
    w(f'<section id="chapter-{chapter.number}">\n<h2>{escape(chapter.heading)}</h2>\n')
    group: str | None = None
    for block in chapter.blocks:
        wanted = (
            {"gallery": "gallery", "panel": "panels"}.get(block.style) if isinstance(block, Figure) else None
        )
        if wanted != group:
            if group:
                w("</div>\n")
            if wanted:
                w(f'<div class="{wanted}">\n')
            group = wanted
        if isinstance(block, Paragraph):
            w(f"<p>{escape(block.text)}</p>\n")
        else:
            pic = block.picture
            w(f'<figure class="{block.style}">\n<img src="')
            image(pic, f)
            w(f'" alt="{escape(pic.alt)}" width="{pic.width}" height="{pic.height}">\n')
            if block.caption:
                w(f"<figcaption>{escape(block.caption)}</figcaption>\n")
            w("</figure>\n")
    if group:
        w("</div>\n")
    w("</section>\n")
