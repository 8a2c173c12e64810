"""Training images: validate, caption and copy them into a folder the trainer owns.

Every problem with the images is collected and reported at once, naming each file and what to do.
Images smaller than the training resolution are accepted (never upscaled) and flagged in the result.
The copied folder holds the images, one `.txt` caption each, and `dataset.json` (the manifest), so a
resumed job trains on exactly the same data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from enchant_worker.config import Settings
from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs.train_lora import LoRATrainingSpec

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
CAPTION_SUFFIX = ".txt"
# The limits' one definition is the settings' (ENCHANT_MIN_TRAINING_IMAGES...); these are their defaults.
MIN_TRAINING_IMAGES: int = Settings.model_fields["min_training_images"].default
MAX_TRAINING_IMAGES: int = Settings.model_fields["max_training_images"].default
MAX_IMAGE_PIXELS: int = Settings.model_fields[
    "max_training_image_pixels"
].default  # a decompression bomb above
MAX_IMAGE_FILE_BYTES = 50 * 1024 * 1024
MIN_IMAGE_SIDE_PX = 16  # below this there is nothing to learn from
MANIFEST = "dataset.json"
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class TrainingImage:
    file: str  # name inside the dataset folder
    source: str  # where it came from
    caption: str  # trigger words first
    width: int  # as displayed (EXIF orientation applied)
    height: int
    small: bool  # shorter side below the training resolution: used as is, never upscaled
    sha256: str


@dataclass(frozen=True)
class PreparedDataset:
    folder: Path
    images: tuple[TrainingImage, ...]
    resolution: int

    def path(self, image: TrainingImage) -> Path:
        return self.folder / image.file

    @property
    def flagged(self) -> list[dict[str, object]]:
        """Images accepted with a warning, for the job's result."""
        return [
            {
                "image": im.source,
                "size": [im.width, im.height],
                "warning": f"smaller than {self.resolution}px",
            }
            for im in self.images
            if im.small
        ]

    @property
    def content_hash(self) -> str:
        """Identifies the images and captions (not where they came from)."""
        digest = hashlib.sha256()
        for im in self.images:
            digest.update(f"{im.sha256}\0{im.caption}\0".encode())
        return digest.hexdigest()


def collect_image_files(entries: Sequence[str]) -> list[Path]:
    """Files named by `entries`; a folder stands for its files (hidden files and `.txt` captions skipped)."""
    files: list[Path] = []
    missing: list[str] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() != CAPTION_SUFFIX
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append(entry)
    if missing:
        raise InvalidJob(f"training_images: not found: {', '.join(map(repr, missing))}")
    return files


def check_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[str, int, int]:
    """(format, width, height) of a usable image, else `ValueError` saying what is wrong with it."""
    if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(f"file is larger than {MAX_IMAGE_FILE_BYTES // 2**20} MiB; resize or recompress it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                fmt, (width, height) = im.format, im.size
                if width * height > max_pixels:
                    raise ValueError(
                        f"claims {width}x{height} pixels, over the {max_pixels // 10**6} megapixel limit "
                        "(a possible decompression bomb); downscale it first"
                    )
                im.verify()  # structure and checksums
            with Image.open(path) as im:
                orientation = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
                im.load()  # decodes every pixel: catches truncated data
    except UnidentifiedImageError:
        raise ValueError(
            "is not an image (PNG, JPEG, WebP or BMP expected); remove it from the folder"
        ) from None
    except Image.DecompressionBombError:
        raise ValueError("is a possible decompression bomb (too many pixels); downscale it first") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"is corrupt or truncated ({exc}); re-export or remove it") from None
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"is a {fmt} image; convert it to PNG or JPEG")
    if min(width, height) < MIN_IMAGE_SIDE_PX:
        raise ValueError(f"is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE_PX}px")
    if orientation in (5, 6, 7, 8):  # rotated by 90°: displayed with the sides swapped
        width, height = height, width
    return fmt, width, height


def build_caption(own: str, trigger_words: Sequence[str]) -> str:
    """Trigger words first, then the image's own caption, comma separated, without repeating them."""
    own = " ".join(own.split())
    prefix = ", ".join(trigger_words)
    if prefix and own.lower().startswith(prefix.lower()):
        return own
    return ", ".join(part for part in (prefix, own) if part)


def _caption_for(path: Path, spec: LoRATrainingSpec) -> str:
    if path.name in spec.captions:
        return spec.captions[path.name]
    sidecar = path.with_suffix(CAPTION_SUFFIX)
    if sidecar.is_file():
        return sidecar.read_text(encoding="utf-8", errors="replace")
    return ""


def prepare_dataset(
    spec: LoRATrainingSpec,
    dest: Path,
    *,
    min_images: int = MIN_TRAINING_IMAGES,
    max_images: int = MAX_TRAINING_IMAGES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> PreparedDataset:
    """Validate `spec.training_images` and copy them with their captions into `dest` (replaced whole)."""
    # 1. Collect the files and check their number before opening any
    files = collect_image_files(spec.training_images)
    if not min_images <= len(files) <= max_images:
        raise InvalidJob(
            f"training_images: {len(files)} image(s) given; between {min_images} and {max_images} are needed"
        )
    unknown = set(spec.captions) - {f.name for f in files}
    if unknown:
        raise InvalidJob(f"captions: no training image is named {', '.join(sorted(map(repr, unknown)))}")

    # 2. Check every image, collecting all problems
    checked: list[tuple[Path, str, int, int]] = []
    problems: list[str] = []
    for path in files:
        try:
            checked.append((path, *check_image(path, max_pixels)))
        except ValueError as exc:
            problems.append(f"{path.name} {exc}")
    if problems:
        raise InvalidJob(f"training_images: {len(problems)} unusable file(s): " + "; ".join(problems))

    # 3. Copy into a temporary folder next to `dest`, then move it into place
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        images = [
            _copy_one(i, path, fmt, width, height, spec, tmp)
            for i, (path, fmt, width, height) in enumerate(checked)
        ]
        dataset = PreparedDataset(folder=dest, images=tuple(images), resolution=spec.resolution)
        _write_manifest(tmp, dataset)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataset


def _copy_one(
    index: int, path: Path, fmt: str, width: int, height: int, spec: LoRATrainingSpec, folder: Path
) -> TrainingImage:
    name = f"{index:04d}{IMAGE_FORMATS[fmt]}"
    data = path.read_bytes()
    (folder / name).write_bytes(data)
    caption = build_caption(_caption_for(path, spec), spec.trigger_words)
    (folder / name).with_suffix(CAPTION_SUFFIX).write_text(caption, encoding="utf-8")
    return TrainingImage(
        file=name,
        source=str(path),
        caption=caption,
        width=width,
        height=height,
        small=min(width, height) < spec.resolution,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _write_manifest(folder: Path, dataset: PreparedDataset) -> None:
    manifest = {"resolution": dataset.resolution, "images": [asdict(im) for im in dataset.images]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def load_dataset(folder: Path) -> PreparedDataset:
    """A dataset written earlier by `prepare_dataset` (e.g. when a job resumes)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidJob(
            f"training data folder {folder} has no {MANIFEST}; prepare the dataset again"
        ) from None
    images = tuple(TrainingImage(**item) for item in manifest["images"])
    return PreparedDataset(folder=folder, images=images, resolution=int(manifest["resolution"]))
