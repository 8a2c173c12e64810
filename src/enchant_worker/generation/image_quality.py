"""`analyzeImageGeneration(image) -> ImageQuality`: cheap technical checks of a generated image.

Exposure (mean luminance), contrast (RMS: the luminance's standard deviation), sharpness (variance of
the Laplacian of the luminance), clipped shadows and highlights, and the broken cases: NaN (a float
array holding NaN or infinity), black (nothing brighter than 2/255, what a NaN decode becomes) and
blank (a flat image). numpy on the PIL image; no torch. The CLIP prompt alignment is apart
(`clip_alignment`): it needs a model.

The `score` (0-1) weighs the technical parts only, so that it means the same for every model and a
`min_quality` filter compares like with like; a broken image scores 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

QUALITY_VERSION = 1  # bump when a measure or the score changes: stored results say which they used
ANALYSIS_MAX_SIDE_PX = (
    256  # larger images are analysed downscaled: ~1 ms whatever the size, comparable sharpness
)
BLACK_MAX_VALUE = 2 / 255  # as generation.generate: nothing brighter than this is a black image
BLANK_MAX_STD = 1 / 255  # luminance spread below one grey level: a flat, blank image
CLIP_LOW, CLIP_HIGH = 2 / 255, 253 / 255  # pixels at or past these are clipped shadows / highlights
# Where each part's score reaches 1 (or its knee): typical of a well-exposed, in-focus picture.
CONTRAST_FULL_STD = 0.18
SHARPNESS_KNEE = 0.002  # Laplacian variance (luminance 0-1) scoring 0.5
CLIPPED_FREE_FRACTION = 0.05  # up to 5 % of pixels may be clipped without penalty
WEIGHTS = {"exposure": 0.3, "contrast": 0.3, "sharpness": 0.3, "clipping": 0.1}
# Flags raised below / above these
UNDEREXPOSED_MEAN, OVEREXPOSED_MEAN = 0.15, 0.85
LOW_CONTRAST_STD = 0.05
BLURRY_SCORE = 0.2
CLIPPED_FRACTION = 0.25
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" mode


def analyze_image(image: Any) -> dict[str, Any]:
    """The quality of one image: a PIL image, or an H×W×C / H×W array (uint8, or float in 0-1 as a
    pipeline's `output_type="np"` gives it, where NaN can show). Never raises for odd pixels."""
    # 1. Luminance in 0-1, downscaled to a bounded size (PIL images: converted by PIL, in C)
    if isinstance(image, np.ndarray):
        pixels, size = _array_pixels(image)
        finite = np.isfinite(pixels)
        nan_fraction = float(1.0 - finite.mean()) if pixels.size else 1.0
        if nan_fraction:
            pixels = np.where(finite, pixels, 0.0)
        luma = _luminance(np.clip(pixels, 0.0, 1.0))
    else:
        luma, nan_fraction = _pil_luminance(image), 0.0
        size = (luma.shape[1], luma.shape[0])

    # 2. The measures
    mean, std = float(luma.mean()), float(luma.std())
    laplacian_var = _laplacian_variance(luma)
    dark, bright = float((luma <= CLIP_LOW).mean()), float((luma >= CLIP_HIGH).mean())

    # 3. The broken cases, then the parts' scores and their weighted sum
    flags = []
    if nan_fraction:
        flags.append("nan")
    if float(luma.max()) < BLACK_MAX_VALUE:
        flags.append("black")
    elif std < BLANK_MAX_STD:
        flags.append("blank")
    scores = {
        "exposure": max(0.0, 1.0 - ((mean - 0.5) / 0.5) ** 2),
        "contrast": min(1.0, std / CONTRAST_FULL_STD),
        "sharpness": laplacian_var / (laplacian_var + SHARPNESS_KNEE),
        "clipping": max(
            0.0, 1.0 - max(0.0, dark + bright - CLIPPED_FREE_FRACTION) / (1 - CLIPPED_FREE_FRACTION)
        ),
    }
    broken = bool({"nan", "black", "blank"} & set(flags))
    score = 0.0 if broken else sum(WEIGHTS[k] * v for k, v in scores.items())
    flags += _soft_flags(mean, std, scores["sharpness"], dark + bright) if not broken else []
    return {
        "version": QUALITY_VERSION,
        "status": "broken" if broken else "ok",
        "score": round(score, 4),
        "exposure": round(mean, 4),
        "contrast": round(std, 4),
        "sharpness": round(laplacian_var, 6),
        "clipped_dark": round(dark, 4),
        "clipped_bright": round(bright, 4),
        "nan_fraction": round(nan_fraction, 4),
        "scores": {k: round(v, 4) for k, v in scores.items()},
        "flags": flags,
        "analysed_size": list(size),
    }


def unreadable(reason: str) -> dict[str, Any]:
    """The result for an image that could not be analysed (no score: a `min_quality` filter skips it)."""
    return {
        "version": QUALITY_VERSION,
        "status": "unreadable",
        "score": None,
        "flags": ["unreadable"],
        "reason": reason,
    }


def load_image(path: Path) -> tuple[Any, str | None]:
    """The image file decoded as RGB, or None and why not (missing, empty, corrupt, truncated)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()  # decode every pixel now: a truncated file fails here, not later
            return opened.convert("RGB"), None
    except FileNotFoundError:
        return None, f"the image file {path.name} is missing"
    except UnidentifiedImageError:
        return None, f"the image file {path.name} is not an image (corrupt or empty)"
    except (OSError, ValueError, SyntaxError) as exc:  # PIL reports truncated data as OSError
        return None, f"the image file {path.name} could not be decoded: {exc}"


def analyze_file(path: Path) -> tuple[dict[str, Any], Any]:
    """The quality of a stored image file and the decoded image (None when unreadable)."""
    image, reason = load_image(path)
    if image is None:
        return unreadable(reason or "unreadable"), None
    return analyze_image(image), image


def check_stored(path: Path, sha256: str) -> str | None:
    """Why the stored file at `path` is not the image that was written (its SHA-256 `sha256`), or None.
    Cheaper than decoding it again: the pixels are analysed from the image in memory."""
    import hashlib

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"the image file {path.name} is missing"
    except OSError as exc:
        return f"the image file {path.name} could not be read: {exc}"
    if hashlib.sha256(data).hexdigest() != sha256:
        return (
            f"the image file {path.name} is corrupt: its {len(data)} bytes are not those written "
            f"(SHA-256 {sha256[:12]}…)"
        )
    return None


def below(quality: dict[str, Any], threshold: float) -> bool:
    """Whether an image falls short of `threshold` (an unreadable or broken one always does)."""
    score = quality.get("score")
    return score is None or quality.get("status") != "ok" or score < threshold


# -- helpers ------------------------------------------------------------------------------------


def _array_pixels(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Float pixels in 0-1 (H×W×C) of at most ANALYSIS_MAX_SIDE_PX a side, and the analysed (w, h)."""
    array = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    if array.ndim == 2:
        array = array[:, :, None]
    step = max(1, math.ceil(max(array.shape[:2]) / ANALYSIS_MAX_SIDE_PX))
    array = array[::step, ::step]  # plain striding: resampling would spread NaN
    return array, (array.shape[1], array.shape[0])


def _pil_luminance(image: Any) -> np.ndarray:
    """A PIL image's luminance (PIL's "L": the same BT.601 weights) in 0-1, at most
    ANALYSIS_MAX_SIDE_PX a side (box-averaged by an integer factor: fast, and no ringing)."""
    gray = image.convert("L") if image.mode != "L" else image
    factor = math.ceil(max(gray.size) / ANALYSIS_MAX_SIDE_PX)
    if factor > 1:
        gray = gray.reduce(factor)
    return np.asarray(gray, dtype=np.float32) * np.float32(1 / 255)


def _luminance(pixels: np.ndarray) -> np.ndarray:
    if pixels.shape[2] >= 3:
        return pixels[:, :, :3] @ _LUMA
    return pixels[:, :, 0]


def _laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian (OpenCV's usual focus measure), on the inner pixels."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
    return float(lap.var())


def _soft_flags(mean: float, std: float, sharpness_score: float, clipped: float) -> list[str]:
    flags = []
    if mean < UNDEREXPOSED_MEAN:
        flags.append("underexposed")
    elif mean > OVEREXPOSED_MEAN:
        flags.append("overexposed")
    if std < LOW_CONTRAST_STD:
        flags.append("low_contrast")
    if sharpness_score < BLURRY_SCORE:
        flags.append("blurry")
    if clipped > CLIPPED_FRACTION:
        flags.append("clipped")
    return flags
