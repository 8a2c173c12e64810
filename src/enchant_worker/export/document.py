"""The one document model every writer renders: a book of chapters, each a list of blocks (paragraphs
and figures). The layout decides the blocks; writers only render them.

- text-with-images: a scene's illustration (caption: its summary) before the scene's text; a chapter whose
  scenes have no text shows the chapter's text, then its illustrations.
- gallery: each chapter's illustrations with captions, no body text.
- comic-style: panels, each an illustration with a caption box (the scene summary, else its first sentence).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enchant_worker.export.images import BadImage, Picture, PictureCache
from enchant_worker.export.story_data import author_name

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")
CAPTION_MAX_CHARS = 280


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Figure:
    picture: Picture
    caption: str
    style: str  # 'figure', 'gallery' or 'panel'
    scene_title: str = ""
    scene_text: str = ""  # what a video shows as the subtitle


Block = Paragraph | Figure


@dataclass
class Chapter:
    number: int
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return f"Chapter {self.number}" + (f": {self.title}" if self.title else "")

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


@dataclass
class Book:
    identifier: str  # urn:uuid:<story id>
    title: str
    author: str
    language: str
    description: str
    modified: str  # ISO time, UTC, seconds
    layout: str
    chapters: list[Chapter]
    notes: list[str]  # what the export could not include, said in the book itself
    css: str = ""
    cover: Picture | None = None
    page_size: str = "A4"

    @property
    def figure_count(self) -> int:
        return sum(len(c.figures) for c in self.chapters)


def paragraphs(text: str | None) -> list[str]:
    """Text split on blank lines (single line breaks join into one paragraph)."""
    if not text:
        return []
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [" ".join(p.split()) for p in parts if p.strip()]


def first_sentence(text: str | None) -> str:
    found = paragraphs(text)
    if not found:
        return ""
    return _SENTENCE_END.split(found[0], maxsplit=1)[0]


def _clip(text: str, limit: int = CAPTION_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_book(
    data: dict[str, Any],
    *,
    layout: str,
    include_images: bool,
    image_quality: str,
    pictures: PictureCache,
    language: str = "en",
    css: str = "",
    page_size: str = "A4",
    on_chapter: Callable[[int, int], None] = lambda i, n: None,
) -> Book:
    """The book of a story (`story_data.load_story`). Images are resampled here (once per quality and
    file); a missing or corrupt file is skipped with a note."""
    from datetime import UTC, datetime

    notes: list[str] = []
    chapters: list[Chapter] = []
    total = len(data["chapters"])
    any_image_row = False
    for index, raw in enumerate(data["chapters"]):
        chapter = Chapter(raw["chapter_number"], raw.get("title") or "")
        scenes = raw.get("scenes") or []
        scene_text = any(s.get("content") for s in scenes)
        if layout == "text-with-images" and not scene_text:
            chapter.blocks += [Paragraph(p) for p in paragraphs(raw.get("content"))]
        for scene in scenes:
            any_image_row = any_image_row or bool(scene["images"])
            figure = None
            if include_images and scene["images"]:
                figure = _figure(scene, layout, image_quality, pictures, notes, chapter)
            if figure is not None:
                chapter.blocks.append(figure)
            if layout == "text-with-images" and scene_text:
                chapter.blocks += [Paragraph(p) for p in paragraphs(scene.get("content"))]
        if layout != "text-with-images" and not chapter.figures:
            chapter.blocks += [Paragraph(p) for p in paragraphs(raw.get("content"))][:1]
        chapters.append(chapter)
        on_chapter(index + 1, total)
    if include_images and not any_image_row:
        notes.append("This story has no illustrations yet: the export holds its text only.")
    elif not include_images:
        notes.append("Exported without illustrations (include_images was off).")
    cover = next((f.picture for c in chapters for f in c.figures), None)
    story = data["story"]
    return Book(
        identifier=f"urn:uuid:{story['id']}",
        title=story.get("title") or "Untitled",
        author=author_name(data),
        language=language,
        description=story.get("description") or "",
        modified=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        layout=layout,
        chapters=chapters,
        notes=notes,
        css=css,
        cover=cover,
        page_size=page_size,
    )


def _figure(
    scene: dict[str, Any],
    layout: str,
    quality: str,
    pictures: PictureCache,
    notes: list[str],
    chapter: Chapter,
) -> Figure | None:
    image = scene["images"][-1]  # the newest illustration of the scene
    summary = " ".join((scene.get("summary") or "").split())
    alt = _clip(summary or scene.get("title") or f"Illustration of scene {scene['scene_number']}")
    try:
        picture = pictures.prepare(image["file_path"], quality, alt=alt)
    except BadImage as exc:
        notes.append(f"{chapter.heading}, scene {scene['scene_number']}: illustration skipped ({exc}).")
        return None
    caption = summary or first_sentence(scene.get("content")) or (scene.get("title") or "")
    style = {"text-with-images": "figure", "gallery": "gallery", "comic-style": "panel"}[layout]
    text = " ".join(paragraphs(scene.get("content"))) or summary
    return Figure(picture, _clip(caption), style, scene.get("title") or "", _clip(text, 400))
