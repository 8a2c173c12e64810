"""The document model: what each layout puts in a chapter, and the notes on what is missing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from enchant_worker.content_address import content_address
from enchant_worker.export.document import Paragraph, build_book, first_sentence, paragraphs
from enchant_worker.export.images import PictureCache
from enchant_worker.export.video_writer import FADE_S, TITLE_S, plan
from tests.support.stories import png


def story(tmp_path, images=True):
    scenes = []
    for n in (1, 2):
        rows = []
        if images:
            data = png((64, 48), seed=n)
            rel = content_address(data)
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(data)
            rows = [{"id": f"img{n}", "file_path": rel}]
        scenes.append(
            {
                "scene_number": n,
                "title": f"S{n}",
                "summary": f"Summary {n}.",
                "content": f"Scene {n} begins. It goes on.\n\nSecond paragraph {n}.",
                "images": rows,
            }
        )
    return {
        "story": {"id": "5f0e6c1e-0000-4000-8000-000000000000", "title": "T", "author": {"email": "a@b.c"}},
        "chapters": [{"chapter_number": 1, "title": "One", "content": "Chapter text.", "scenes": scenes}],
    }


def kinds(chapter):
    return [type(b).__name__ for b in chapter.blocks]


def test_layouts(tmp_path):
    pictures = PictureCache(tmp_path)
    text = build_book(
        story(tmp_path),
        layout="text-with-images",
        include_images=True,
        image_quality="thumbnail",
        pictures=pictures,
    ).chapters[0]
    assert kinds(text) == ["Figure", "Paragraph", "Paragraph", "Figure", "Paragraph", "Paragraph"]
    assert text.blocks[0].caption == "Summary 1." and text.blocks[0].picture.alt == "Summary 1."
    gallery = build_book(
        story(tmp_path), layout="gallery", include_images=True, image_quality="thumbnail", pictures=pictures
    ).chapters[0]
    assert kinds(gallery) == ["Figure", "Figure"] and {b.style for b in gallery.blocks} == {"gallery"}
    comic = build_book(
        story(tmp_path),
        layout="comic-style",
        include_images=True,
        image_quality="thumbnail",
        pictures=pictures,
    ).chapters[0]
    assert {b.style for b in comic.blocks} == {"panel"}
    # Each image resampled once per quality, reused after.
    assert len(list((tmp_path / "derived" / "thumbnail").rglob("*.jpg"))) == 2


def test_notes_when_there_is_nothing_to_show(tmp_path):
    book = build_book(
        story(tmp_path, images=False),
        layout="text-with-images",
        include_images=True,
        image_quality="medium",
        pictures=PictureCache(tmp_path),
    )
    assert book.figure_count == 0 and "no illustrations yet" in book.notes[0] and book.cover is None
    book = build_book(
        story(tmp_path),
        layout="text-with-images",
        include_images=False,
        image_quality="medium",
        pictures=PictureCache(tmp_path),
    )
    assert book.figure_count == 0 and "without illustrations" in book.notes[0]
    assert all(isinstance(b, Paragraph) for b in book.chapters[0].blocks)


def test_text_helpers():
    assert paragraphs("a\nb\n\n\n c ") == ["a b", "c"]
    assert first_sentence("Dawn came. Then rain!") == "Dawn came."
    assert first_sentence(None) == ""


def test_the_video_plan_overlaps_shots_by_the_fade():
    figure = SimpleNamespace(scene_text="x", caption="x", picture=None)
    book = SimpleNamespace(
        title="T",
        author="A",
        chapters=[
            SimpleNamespace(heading="C1", figures=[figure] * 2),
            SimpleNamespace(heading="C2", figures=[]),
        ],
    )
    shots, total = plan(book, 4.0)
    assert [s.kind for s in shots] == ["title", "title", "still", "still"]  # an empty chapter gets no card
    assert total == pytest.approx(TITLE_S * 2 + 8.0 - 3 * FADE_S)
