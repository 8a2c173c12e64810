"""Pictures for exports: each source image resampled once per quality, stored content-addressed under
the storage folder and reused by every later export.

    pictures = PictureCache(storage_root)
    picture = pictures.prepare(Path("images/ab/cd/....png"), "medium", alt="...")   # or BadImage
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from enchant_worker.storage import Storage, StoredFileMissing, local_copy

# Longest side in pixels per quality; 'high' keeps the original size up to this bound.
QUALITY_MAX_SIDE_PX = {"thumbnail": 320, "medium": 960, "high": 2048}
JPEG_QUALITY = {"thumbnail": 80, "medium": 85, "high": 92}
MAX_SOURCE_PIXELS = 80_000_000  # larger is treated as a decompression bomb
CHUNK_BYTES = 1 << 20


class BadImage(Exception):
    """The image file is missing or cannot be read."""


@dataclass(frozen=True)
class Picture:
    """A prepared image file: JPEG (or PNG where the source has transparency)."""

    path: Path
    width: int
    height: int
    media_type: str
    sha256: str  # of the prepared file
    alt: str = ""

    @property
    def suffix(self) -> str:
        return ".png" if self.media_type == "image/png" else ".jpg"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class PictureCache:
    """Resampled copies under ROOT/derived/<quality>/ab/cd/<source sha256>.<ext>."""

    def __init__(self, storage_root: Path, storage: Storage | None = None):
        self.root = Path(storage_root)
        self.storage = storage  # object storage the images come from (copied under the root), or None

    def resolve(self, file_path: str) -> Path:
        """The file an images row names: absolute, or relative to the storage folder (never outside it)."""
        name = file_path.removeprefix("file://")
        path = Path(name)
        if self.storage is not None and not path.is_absolute():
            try:
                return local_copy(self.storage, name, self.root)
            except ValueError:
                raise BadImage(f"{file_path}: outside the storage folder") from None
            except StoredFileMissing:
                raise BadImage(f"{path.name}: file missing from storage") from None
        if not path.is_absolute():
            root = self.root.resolve()
            path = (root / path).resolve()
            if not path.is_relative_to(root):
                raise BadImage(f"{file_path}: outside the storage folder")
        return path

    def prepare(self, file_path: str, quality: str, *, alt: str = "") -> Picture:
        from PIL import Image, UnidentifiedImageError

        source = self.resolve(file_path)
        if not source.is_file():
            raise BadImage(f"{Path(file_path).name}: file missing from storage")
        try:
            source_hash = file_sha256(source)
        except OSError as exc:
            raise BadImage(f"{source.name}: cannot be read ({exc.strerror or exc})") from None
        for ext, media in ((".jpg", "image/jpeg"), (".png", "image/png")):
            cached = (
                self.root / "derived" / quality / source_hash[:2] / source_hash[2:4] / f"{source_hash}{ext}"
            )
            if cached.is_file():
                try:
                    with Image.open(cached) as im:
                        width, height = im.size
                    return Picture(cached, width, height, media, file_sha256(cached), alt)
                except (OSError, UnidentifiedImageError):
                    cached.unlink(missing_ok=True)  # a damaged cache entry is made again
        try:
            with Image.open(source) as im:
                if im.width * im.height > MAX_SOURCE_PIXELS:
                    raise BadImage(f"{source.name}: {im.width}x{im.height} is too large")
                im.load()
                has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
                image = im.convert("RGBA" if has_alpha else "RGB")
        except (
            OSError,
            UnidentifiedImageError,
            Image.DecompressionBombError,
            SyntaxError,
            ValueError,
        ) as exc:
            raise BadImage(f"{source.name}: not a readable image ({type(exc).__name__})") from None
        image.thumbnail((QUALITY_MAX_SIDE_PX[quality],) * 2, Image.Resampling.LANCZOS)
        ext, media, fmt = (".png", "image/png", "PNG") if has_alpha else (".jpg", "image/jpeg", "JPEG")
        target = self.root / "derived" / quality / source_hash[:2] / source_hash[2:4] / f"{source_hash}{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=ext)
        try:
            with os.fdopen(fd, "wb") as f:
                if fmt == "JPEG":
                    image.save(f, fmt, quality=JPEG_QUALITY[quality], optimize=True, progressive=False)
                else:
                    image.save(f, fmt, optimize=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Picture(target, image.width, image.height, media, file_sha256(target), alt)
