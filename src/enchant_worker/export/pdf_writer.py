"""PDF (reportlab): fonts embedded (the Vera TrueType family reportlab ships, subset per document), a
contents page linking to every chapter, one bookmark per chapter in the outline, selectable text, images
at the chosen quality (JPEGs pass through unrecompressed), A4, Letter or A5 pages. One pass: chapters
are laid out as they are read, images are opened only while their page is drawn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

SUFFIX, MEDIA_TYPE = ".pdf", "application/pdf"
FONT = "EnchantSerif"
MAX_POINTS_PER_PIXEL = 0.75  # images are never blown up past 96 dpi
_fonts_registered = False


def _register_fonts() -> None:
    global _fonts_registered
    if _fonts_registered:
        return
    import reportlab
    from reportlab import rl_config
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    # Images go in as binary streams: ASCII85 (reportlab's default) is 25% larger and, without
    # reportlab's optional C accelerator, four fifths of the time of a long illustrated book.
    rl_config.useA85 = 0
    folder = Path(reportlab.__file__).parent / "fonts"
    for suffix, file, bold, italic in (
        ("", "Vera.ttf", 0, 0),
        ("-Bold", "VeraBd.ttf", 1, 0),
        ("-Italic", "VeraIt.ttf", 0, 1),
        ("-BoldItalic", "VeraBI.ttf", 1, 1),
    ):
        pdfmetrics.registerFont(TTFont(FONT + suffix, str(folder / file)))
        addMapping(FONT, bold, italic, FONT + suffix)
    _fonts_registered = True


def write(book: Any, out: BinaryIO, progress: Callable[[int, int], None]) -> None:
    from reportlab.lib import pagesizes
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        ActionFlowable,
        Image,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from enchant_worker.export.document import Figure

    _register_fonts()
    size = {"A4": pagesizes.A4, "Letter": pagesizes.LETTER, "A5": pagesizes.A5}[book.page_size]
    margin = 15 * mm if book.page_size == "A5" else 20 * mm
    base = 10 if book.page_size == "A5" else 11
    body = ParagraphStyle("body", fontName=FONT, fontSize=base, leading=base * 1.45, spaceAfter=base * 0.6)
    title = ParagraphStyle(
        "title",
        fontName=FONT + "-Bold",
        fontSize=base * 2.4,
        leading=base * 3,
        alignment=1,
        spaceAfter=base * 2,
    )
    h1 = ParagraphStyle(
        "h1",
        fontName=FONT + "-Bold",
        fontSize=base * 1.7,
        leading=base * 2.2,
        spaceBefore=base,
        spaceAfter=base,
    )
    caption = ParagraphStyle(
        "caption",
        fontName=FONT + "-Italic",
        fontSize=base * 0.85,
        leading=base * 1.15,
        alignment=1,
        spaceAfter=base,
    )
    panel_caption = ParagraphStyle(
        "panel", parent=caption, fontName=FONT, alignment=0, backColor="#fffbe6", borderPadding=3
    )
    toc = ParagraphStyle("toc", parent=body, leftIndent=base, textColor="#1a3d7c")
    note = ParagraphStyle("note", parent=body, fontSize=base * 0.9, textColor="#7a4b00")

    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=book.title,
        author=book.author,
        subject=book.description,
        creator="Enchant Worker",
        lang=book.language,
        # The canvas starts in our font: reportlab's default (Helvetica) is not embedded.
        initialFontName=FONT,
        initialFontSize=base,
    )
    frame_w = size[0] - 2 * margin
    frame_h = size[1] - 2 * margin

    def image(picture: Any, max_w: float, max_h: float) -> Image:
        scale = min(max_w / picture.width, max_h / picture.height, MAX_POINTS_PER_PIXEL)
        return Image(str(picture.path), picture.width * scale, picture.height * scale)

    class Bookmark(ActionFlowable):
        """Marks the chapter's first page: a named destination and an outline entry."""

        def __init__(self, key: str, text: str, done: int):
            super().__init__()
            self.key, self.text, self.done = key, text, done

        def apply(self, doc: Any) -> None:
            progress(self.done, len(book.chapters))  # the chapters before this one are laid out
            doc.canv.bookmarkPage(self.key)
            doc.canv.addOutlineEntry(self.text, self.key, level=0, closed=False)

    def chapter_flowables(chapter: Any, done: int) -> list[Any]:
        items: list[Any] = [
            Bookmark(f"ch{chapter.number}", chapter.heading, done),
            Paragraph(escape(chapter.heading), h1),
        ]
        cells: list[Any] = []
        for block in chapter.blocks:
            if isinstance(block, Figure) and block.style in ("gallery", "panel"):
                style = panel_caption if block.style == "panel" else caption
                cells.append(
                    [
                        image(block.picture, frame_w / 2 - 12, frame_h / 2.6),
                        Paragraph(escape(block.caption), style),
                    ]
                )
                continue
            if isinstance(block, Figure):
                items.append(
                    KeepTogether(
                        [
                            image(block.picture, frame_w, frame_h * 0.6),
                            Paragraph(escape(block.caption), caption),
                        ]
                    )
                )
            else:
                items.append(Paragraph(escape(block.text), body))
        if cells:
            rows = [
                cells[i : i + 2] + ([[""]] if len(cells[i : i + 2]) == 1 else [])
                for i in range(0, len(cells), 2)
            ]
            border = 1.5 if any(b.style == "panel" for b in chapter.figures) else 0
            table = Table(rows, colWidths=[frame_w / 2] * 2)
            table.setStyle(
                TableStyle(
                    [
                        ("FONTNAME", (0, 0), (-1, -1), FONT),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                        *(
                            [
                                ("BOX", (0, 0), (-1, -1), border, "#111111"),
                                ("INNERGRID", (0, 0), (-1, -1), border, "#111111"),
                            ]
                            if border
                            else []
                        ),
                    ]
                )
            )
            items.append(table)
        items.append(PageBreak())
        return items

    flowables: list[Any] = [
        Paragraph(escape(book.title), title),
        Paragraph(escape(book.author), ParagraphStyle("by", parent=body, alignment=1)),
        Spacer(1, base * 2),
    ]
    if book.description:
        flowables.append(Paragraph(escape(book.description), body))
    flowables += [Paragraph(escape(text), note) for text in book.notes]
    flowables.append(Paragraph("Contents", h1))
    flowables += [Paragraph(f'<a href="#ch{c.number}">{escape(c.heading)}</a>', toc) for c in book.chapters]
    flowables.append(PageBreak())
    for index, chapter in enumerate(book.chapters):
        flowables += chapter_flowables(chapter, index)
    doc.build(flowables)
    progress(len(book.chapters), len(book.chapters))
