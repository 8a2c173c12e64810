"""Each writer's output judged by the outside tools: epubcheck, qpdf and poppler, the Nu HTML checker,
the JSON Schema, and PyAV's demuxer (libavformat, what ffprobe reads with)."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile

import jsonschema
import pytest

from enchant_worker.export.json_writer import schema
from enchant_worker.export.video_writer import FPS, plan
from tests.integration.export.conftest import epubcheck, html5validate, tool
from tests.support.stories import make_story


def test_epub_passes_epubcheck(story, export, tmp_path):
    """comic-style here; the queue's acceptance test checks text-with-images."""
    files = []
    for layout in ("comic-style", "text-with-images"):
        result, path = export(story.story_id, "epub", layout=layout, custom_styling="h2 { color: #334; }")
        files.append(path)
        assert result.media_type == "application/epub+zip" and result.filename == "The Lantern River.epub"
    epubcheck(files[0])
    with zipfile.ZipFile(files[1]) as zf:
        assert zf.namelist()[0] == "mimetype" and zf.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        opf = zf.read("EPUB/package.opf").decode()
        assert "<dc:title>The Lantern River</dc:title>" in opf and "<dc:language>en</dc:language>" in opf
        assert f"urn:uuid:{story.story_id}" in opf and 'properties="cover-image"' in opf
        assert 'properties="nav"' in opf
        chapter = zf.read("EPUB/chapter-00001.xhtml").decode()
        assert 'alt="Mira at the mill, moment 1.1"' in chapter  # alt text from the scene summary
        assert len([n for n in zf.namelist() if n.startswith("EPUB/images/")]) == 6


def test_pdf_has_embedded_fonts_bookmarks_text_and_images(story, export, tmp_path):
    result, path = export(story.story_id, "pdf", image_quality="thumbnail", page_size="A5")
    check = subprocess.run([tool("qpdf"), "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fonts = subprocess.run([tool("pdffonts"), str(path)], capture_output=True, text=True, check=True).stdout
    rows = fonts.strip().splitlines()[2:]
    assert rows and all(row.split()[-5] == "yes" for row in rows), fonts  # the 'emb' column
    text = subprocess.run(
        [tool("pdftotext"), str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    for first in story.first_sentences:
        assert first in flat
    images = subprocess.run(
        [tool("pdfimages"), "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert len(images.strip().splitlines()[2:]) == 6
    info = subprocess.run([tool("pdfinfo"), str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+419\.\d+ x 595\.\d+ pts", info), info  # A5
    assert "Title:           The Lantern River" in info
    outline = json.loads(
        subprocess.run(
            [tool("qpdf"), "--json", "--json-key=outlines", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["outlines"]
    assert [o["title"] for o in outline] == [f"Chapter {i}: " for i in (1, 2, 3)] or [
        o["title"].split(":")[0] for o in outline
    ] == ["Chapter 1", "Chapter 2", "Chapter 3"]


def test_html_is_valid_and_self_contained(story, export):
    single, single_path = export(
        story.story_id,
        "html",
        layout="gallery",
        custom_styling="@import url(http://evil.example/x.css); body{background:url(https://t.example/p.png)}"
        " </style><script>alert(1)</script>",
    )
    folder, folder_path = export(story.story_id, "html", html_mode="folder")
    index = folder_path.with_suffix(".index.html")
    with zipfile.ZipFile(folder_path) as zf:
        index.write_bytes(zf.read("index.html"))
        names = zf.namelist()
    assert len([n for n in names if n.startswith("images/")]) == 6
    html5validate(single_path, index)
    text = single_path.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    style = text.split("<style>")[1].split("</style>")[0]
    assert "http" not in style and "@import" not in style and "script" not in style
    assert "<script" not in text
    assert text.count('src="data:image/jpeg;base64,') == 6
    assert any("removed" in n for n in single.notes)


def test_json_validates_against_the_schema(story, export):
    result, path = export(story.story_id, "json")
    data = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema()).validate(data)
    assert data["format"] == "enchant-story" and data["version"] == 1
    scene = data["chapters"][0]["scenes"][0]
    assert scene["emotions"][0]["primary_emotion"] == "hope" and scene["character_ids"]
    assert scene["images"][0]["parameters"]["loras"] == [{"name": "ink", "strength": 0.8}]
    assert scene["images"][0]["data"]  # the original file travels with the story
    assert data["custom_fields"][0]["values"] and data["emotion_transitions"]


def test_video_is_h264_with_subtitles_and_the_planned_duration(conn, storage, export):
    av = pytest.importorskip("av")
    story = make_story(conn, storage, chapters=2, scenes_per_chapter=1)
    result, path = export(story.story_id, "video", video_resolution="480p", scene_seconds=1.5)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == (854, 480)
        duration_s = float(video.duration * video.time_base)
        subtitles = [s for p in container.demux(container.streams.subtitles[0]) for s in p.decode()]
    from enchant_worker.export.document import build_book
    from enchant_worker.export.images import PictureCache
    from enchant_worker.export.story_data import load_story

    book = build_book(
        load_story(conn, story.story_id),
        layout="text-with-images",
        include_images=True,
        image_quality="high",
        pictures=PictureCache(path.parents[3]),
    )
    _, planned_s = plan(book, 1.5)
    assert abs(duration_s - planned_s) <= 0.05 * planned_s, (duration_s, planned_s)
    assert round(planned_s * FPS) > 0
    assert len(subtitles) == 2 and b"Chapter 1 opens" in subtitles[0].dialogue
