"""File names for downloads, from titles that may hold any character."""

from __future__ import annotations

import re
import unicodedata

_ILLEGAL = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
MAX_STEM_CHARS = 120


def safe_filename(title: str, suffix: str) -> str:
    """A name that every common file system accepts: no separators, control or reserved characters, no
    leading dots, not a Windows device name, bounded length; never empty."""
    text = unicodedata.normalize("NFC", title or "")
    text = _ILLEGAL.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" ._")
    if text.lower() in _RESERVED:
        text = f"{text}_"
    text = text[:MAX_STEM_CHARS].rstrip(" .") or "story"
    return f"{text}{suffix}"


def ascii_filename(name: str) -> str:
    """The ASCII fallback for Content-Disposition's `filename=`."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9._ -]+", "_", text)).strip(" ._")
    return text or "export"
