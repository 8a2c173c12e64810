"""Video: an H.264 MP4 slideshow of the illustrated scenes through PyAV (its wheels ship FFmpeg with
libx264; no system ffmpeg). A title card opens the book and each chapter; each illustration is shown
with a slow pan and zoom; consecutive shots cross-fade; each scene's text is a mov_text subtitle track.

The timeline is planned first (`plan`), so its duration is known before a frame is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

SUFFIX, MEDIA_TYPE = ".mp4", "video/mp4"
FPS = 24
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
TITLE_S = 2.5
FADE_S = 0.5
ZOOM = 0.12  # a still grows by this much over its shot
SUBTITLE_MAX_CHARS = 200
ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
    "MarginR, MarginV, Encoding\n"
    "Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


@dataclass(frozen=True)
class Shot:
    kind: str  # 'title' or 'still'
    start_s: float
    duration_s: float
    text: str  # the card's words, or the subtitle of a still
    picture: Any = None
    chapter_index: int = 0
    pan: int = 0  # which way a still pans (varies shot to shot)


def plan(book: Any, scene_s: float) -> tuple[list[Shot], float]:
    """The shots in order with their start times (each overlaps the previous by FADE_S) and the total
    duration in seconds."""
    shots: list[Shot] = []
    t = 0.0

    def add(kind: str, duration: float, text: str, picture: Any = None, chapter: int = 0) -> None:
        nonlocal t
        start = max(0.0, t - FADE_S) if shots else 0.0
        shots.append(Shot(kind, start, duration, text, picture, chapter, len(shots) % 4))
        t = start + duration

    add("title", TITLE_S, f"{book.title}\n{book.author}")
    for index, chapter in enumerate(book.chapters):
        figures = chapter.figures
        if not figures:
            continue
        add("title", TITLE_S, chapter.heading, chapter=index)
        for figure in figures:
            add("still", scene_s, figure.scene_text or figure.caption, figure.picture, index)
    return shots, t


def write(book: Any, out: BinaryIO, progress: Callable[[int, int], None], *, resolution: str = "720p",
          scene_s: float = 4.0) -> None:
    import av
    from av.subtitles.subtitle import SubtitleSet

    width, height = RESOLUTIONS[resolution]
    shots, duration = plan(book, scene_s)
    frames = max(1, round(duration * FPS))
    container = av.open(out, mode="w", format="mp4")
    try:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23", "movflags": "+faststart"}
        subs = container.add_stream("mov_text")
        subs.codec_context.time_base = Fraction(1, 1000)
        subs.codec_context.subtitle_header = ASS_HEADER.encode()
        for shot in shots:
            if shot.kind == "still" and shot.text:
                _subtitle(container, subs, SubtitleSet, shot)
        renderer = _Renderer(width, height)
        for i in range(frames):
            t = i / FPS
            frame = renderer.frame(shots, t)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in video.encode(vf):
                container.mux(packet)
            if i % FPS == 0:  # once per second of video: progress, and a chance to cancel
                chapters_done = max((s.chapter_index for s in shots if s.start_s <= t), default=0)
                progress(chapters_done, len(book.chapters))
        for packet in video.encode():
            container.mux(packet)
    finally:
        container.close()
    progress(len(book.chapters), len(book.chapters))


def _subtitle(container: Any, stream: Any, subtitle_set: Any, shot: Shot) -> None:
    text = " ".join(shot.text.split())
    if len(text) > SUBTITLE_MAX_CHARS:
        text = text[: SUBTITLE_MAX_CHARS - 1].rstrip() + "…"
    text = text.replace("{", "(").replace("}", ")").replace("\\", "/")  # ASS override and escape marks
    start_ms = round(shot.start_s * 1000)
    length_ms = round(shot.duration_s * 1000)
    packet = stream.codec_context.encode_subtitle(
        subtitle_set.create(f"0,0,Default,,0,0,0,,{text}".encode(), 0, length_ms, start_ms))
    packet.stream = stream
    packet.pts = packet.dts = start_ms
    packet.duration = length_ms
    packet.time_base = Fraction(1, 1000)
    container.mux(packet)


class _Renderer:
    """Draws the frame at time t: one shot, or two blended during a cross-fade. Keeps the images of the
    shots on screen only (one or two at a time)."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self._loaded: dict[int, Any] = {}

    def frame(self, shots: list[Shot], t: float) -> Any:
        import numpy as np

        active = [(i, s) for i, s in enumerate(shots) if s.start_s <= t < s.start_s + s.duration_s]
        if not active:
            active = [(len(shots) - 1, shots[-1])]
        for key in list(self._loaded):
            if key not in {i for i, _ in active}:
                del self._loaded[key]
        images = [(self._draw(i, s, t - s.start_s), s) for i, s in active[-2:]]
        if len(images) == 1:
            return np.asarray(images[0][0])
        (a, _), (b, second) = images
        alpha = min(1.0, max(0.0, (t - second.start_s) / FADE_S))
        return (np.asarray(a, dtype=np.float32) * (1 - alpha) + np.asarray(b, dtype=np.float32) * alpha).astype(np.uint8)

    def _draw(self, index: int, shot: Shot, local_t: float) -> Any:
        from PIL import Image

        if index not in self._loaded:
            self._loaded[index] = self._card(shot.text) if shot.kind == "title" else self._still(shot.picture.path)
        image = self._loaded[index]
        if shot.kind == "title":
            return image
        # Pan and zoom: a window of the frame's aspect ratio shrinks by ZOOM and drifts across the still.
        progress = min(1.0, max(0.0, local_t / shot.duration_s))
        eased = 0.5 - math.cos(math.pi * progress) / 2
        w, h = image.size
        scale = 1.0 - ZOOM * (eased if shot.pan % 2 == 0 else 1 - eased)
        box_w, box_h = w * scale, h * scale
        dx, dy = (w - box_w), (h - box_h)
        fx = eased if shot.pan in (0, 3) else 1 - eased
        fy = 0.5
        left, top = dx * fx, dy * fy
        return image.resize(self.size, Image.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h))

    def _still(self, path: Path) -> Any:
        """The picture cropped to the frame's aspect ratio (centre), at about frame size."""
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            im = im.convert("RGB")
            return ImageOps.fit(im, self.size, Image.Resampling.LANCZOS)

    def _card(self, text: str) -> Any:
        from PIL import Image, ImageDraw

        width, height = self.size
        image = Image.new("RGB", self.size, (18, 18, 28))
        draw = ImageDraw.Draw(image)
        lines = text.split("\n")
        fonts = [_font(height // 12), *[_font(height // 24)] * (len(lines) - 1)]
        boxes = [draw.textbbox((0, 0), line, font=font) for line, font in zip(lines, fonts, strict=True)]
        total = sum(b[3] - b[1] for b in boxes) + (len(lines) - 1) * height // 30
        y = (height - total) // 2
        for line, font, box in zip(lines, fonts, boxes, strict=True):
            line_w = box[2] - box[0]
            draw.text(((width - line_w) // 2 - box[0], y - box[1]), line, font=font, fill=(235, 225, 200))
            y += box[3] - box[1] + height // 30
        return image


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        import reportlab

        return ImageFont.truetype(str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)

