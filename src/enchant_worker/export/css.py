"""User CSS (`customStyling`) made safe to put inside an export: no external requests, no scripts.

Removed, each with a note: `@import`, `@charset`/`@namespace`, `url(...)` other than `data:image/...`,
`expression(...)`, `javascript:`/`vbscript:`, `behavior`/`-moz-binding`, and anything that could close
the `<style>` element (`<`, `</style`, `<!--`, `-->`). Size is bounded by the job spec (CSS_MAX_CHARS).
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_AT_RULE = re.compile(r"@(import|charset|namespace)\b[^;{}]*(;|$)", re.I)
_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_EXPRESSION = re.compile(r"expression\s*\(", re.I)
_SCHEME = re.compile(r"(javascript|vbscript|livescript)\s*:", re.I)
_BINDING = re.compile(r"(-moz-binding|behavior)\s*:[^;}]*;?", re.I)
_ESCAPE = re.compile(r"\\[0-9a-fA-F]{1,6}\s?|\\.", re.S)
_SAFE_DATA_URL = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$", re.I)


def sanitize(css: str | None) -> tuple[str, list[str]]:
    """The CSS with unsafe parts removed, and what was removed (for the export's notes)."""
    if not css:
        return "", []
    removed: list[str] = []

    def note(what: str) -> None:
        if what not in removed:
            removed.append(what)

    text = css.replace("\x00", "")
    if _ESCAPE.search(text):  # escapes can spell 'url' or 'expression' past the filters below
        text = _ESCAPE.sub("", text)
        note("CSS escapes")
    text = _COMMENT.sub("", text)
    for pattern, what in (
        (r"(?is)<\s*(script|style)\b.*?(<\s*/\s*\1\s*>|$)", "HTML script and style elements"),
        (r"<\s*/?\s*[a-zA-Z!][^>]*>?", "HTML tags"),
        (r"<", "'<' (HTML inside CSS)"),
        (r"-->", "'-->'"),
    ):
        if re.search(pattern, text):
            text = re.sub(pattern, "", text)
            note(what)
    if _AT_RULE.search(text):
        text = _AT_RULE.sub("", text)
        note("@import/@charset/@namespace rules")

    def url(match: re.Match[str]) -> str:
        if _SAFE_DATA_URL.match(match.group(2).strip()):
            return match.group(0)
        note("url() references to other files or sites")
        return "none"

    text = _URL.sub(url, text)
    if _EXPRESSION.search(text):
        text = _EXPRESSION.sub("invalid(", text)
        note("expression()")
    if _SCHEME.search(text):
        text = _SCHEME.sub("", text)
        note("script URLs")
    if _BINDING.search(text):
        text = _BINDING.sub("", text)
        note("behavior/-moz-binding")
    return text.strip(), removed
