"""Video: an H.264 MP4 slideshow of the illustrated scenes through PyAV (its wheels ship FFmpeg with
libx264; no system ffmpeg). A title card opens the book and each chapter; each illustration is shown
with a slow pan and zoom; consecutive shots cross-fade; each scene's text is a mov_text subtitle track.

The timeline is planned first (`plan`), so its duration is known before a frame is drawn.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
# x264's fastest preset: a slideshow of stills compresses well anyway; a lower CRF buys back quality.
X264_PRESET, X264_CRF = "ultrafast", "21"
RENDER_THREADS, RENDER_AHEAD = 2, 8
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


def write(
    book: Any,
    out: BinaryIO,
    progress: Callable[[int, int], None],
    *,
    resolution: str = "720p",
    scene_s: float = 4.0,
) -> None:
    import av
    from av.subtitles.subtitle import SubtitleSet

    width, height = RESOLUTIONS[resolution]
    shots, duration = plan(book, scene_s)
    frames = max(1, round(duration * FPS))
    container = av.open(out, mode="w", format="mp4")
    try:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": X264_PRESET, "crf": X264_CRF}
        video.codec_context.thread_type = "FRAME"  # x264's frame threads: more throughput than slices
        subs = container.add_stream("mov_text")
        subs.codec_context.time_base = Fraction(1, 1000)
        subs.codec_context.subtitle_header = ASS_HEADER.encode()
        for shot in shots:
            if shot.kind == "still" and shot.text:
                _subtitle(container, subs, SubtitleSet, shot)
        renderer = _Renderer(width, height)
        # Frames are drawn a few ahead on other threads (swscale and numpy release the GIL) while this
        # one encodes them in order.
        with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
            ahead: deque[Any] = deque()
            n = 0  # the next frame to encode
            for i in range(frames + RENDER_AHEAD):
                if i < frames:
                    ahead.append(pool.submit(renderer.frame, shots, i / FPS))
                if len(ahead) > RENDER_AHEAD or (i >= frames and ahead):
                    vf = ahead.popleft().result()
                    vf.pts = n
                    for packet in video.encode(vf):
                        container.mux(packet)
                    if n % FPS == 0:  # once per second of video: progress, and a chance to cancel
                        chapters_done = max(
                            (s.chapter_index for s in shots if s.start_s <= n / FPS), default=0
                        )
                        progress(chapters_done, len(book.chapters))
                    n += 1
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
        subtitle_set.create(f"0,0,Default,,0,0,0,,{text}".encode(), 0, length_ms, start_ms)
    )
    packet.stream = stream
    packet.pts = packet.dts = start_ms
    packet.duration = length_ms
    packet.time_base = Fraction(1, 1000)
    container.mux(packet)


class _Renderer:
    """Draws the frame at time t: one shot, or two blended during a cross-fade. Keeps the images of the
    shots on screen only (one or two at a time), converted to YUV once. Pan and zoom crop the planes with
    numpy and scale them with libswscale (FFmpeg, through PyAV): several times faster than PIL."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self._loaded: dict[int, Any] = {}
        self._lock = threading.Lock()

    def frame(self, shots: list[Shot], t: float) -> Any:
        import av
        import numpy as np

        active = [(i, s) for i, s in enumerate(shots) if s.start_s <= t < s.start_s + s.duration_s]
        if not active:
            active = [(len(shots) - 1, shots[-1])]
        with self._lock:  # forget shots that ended a while ago (frames are drawn slightly out of order)
            for key in [k for k in self._loaded if shots[k].start_s + shots[k].duration_s < t - 1.0]:
                del self._loaded[key]
        if len(active) == 1:
            return self._yuv(*active[0], t - active[0][1].start_s)
        (i1, first), (i2, second) = active[-2:]
        a = self._yuv(i1, first, t - first.start_s).to_ndarray().astype(np.uint16)
        b = self._yuv(i2, second, t - second.start_s).to_ndarray().astype(np.uint16)
        k = int(256 * min(1.0, max(0.0, (t - second.start_s) / FADE_S)))
        return av.VideoFrame.from_ndarray(((a * (256 - k) + b * k) >> 8).astype(np.uint8), format="yuv420p")

    def _yuv(self, index: int, shot: Shot, local_t: float) -> Any:
        """The shot's frame at local_t (yuv420p). A title card is drawn once; a still is cropped plane by
        plane and scaled by libswscale."""
        import av
        import numpy as np

        width, height = self.size
        with self._lock:
            loaded = self._loaded.get(index)
        if loaded is None:
            if shot.kind == "title":
                card = av.VideoFrame.from_image(self._card(shot.text)).reformat(format="yuv420p")
                loaded = card.to_ndarray()
            else:
                yuv = (
                    av.VideoFrame.from_image(self._still(shot.picture.path))
                    .reformat(format="yuv420p")
                    .to_ndarray()
                )
                quarter = height * width // 4
                chroma = yuv[height:].reshape(-1)
                loaded = (
                    yuv[:height],
                    chroma[:quarter].reshape(height // 2, width // 2),
                    chroma[quarter:].reshape(height // 2, width // 2),
                )
            with self._lock:
                self._loaded[index] = loaded
        if shot.kind == "title":
            return av.VideoFrame.from_ndarray(loaded, format="yuv420p")  # type: ignore[arg-type]  # one array for titles
        y_plane, u_plane, v_plane = loaded
        # A window of the frame's aspect ratio shrinks (or grows) by ZOOM and drifts across the still;
        # even coordinates keep the chroma planes aligned.
        progress = min(1.0, max(0.0, local_t / shot.duration_s))
        eased = 0.5 - math.cos(math.pi * progress) / 2
        scale = 1.0 - ZOOM * (eased if shot.pan % 2 == 0 else 1 - eased)
        box_w, box_h = 2 * round(width * scale / 2), 2 * round(height * scale / 2)
        fx = eased if shot.pan in (0, 3) else 1 - eased
        left, top = 2 * round((width - box_w) * fx / 2), 2 * round((height - box_h) / 4)
        planes = np.concatenate(
            [
                y_plane[top : top + box_h, left : left + box_w].ravel(),
                u_plane[top // 2 : (top + box_h) // 2, left // 2 : (left + box_w) // 2].ravel(),
                v_plane[top // 2 : (top + box_h) // 2, left // 2 : (left + box_w) // 2].ravel(),
            ]
        ).reshape(box_h * 3 // 2, box_w)
        return av.VideoFrame.from_ndarray(planes, format="yuv420p").reformat(
            width, height, interpolation="BILINEAR"
        )

    def _still(self, path: Path) -> Any:
        """The picture cropped to the frame's aspect ratio (centre), at frame size."""
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            return ImageOps.fit(im.convert("RGB"), self.size, Image.Resampling.LANCZOS)

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
