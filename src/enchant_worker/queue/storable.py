"""What Postgres can store: text without NUL characters or lone surrogates, JSON without NaN.

A value that cannot be stored must never reach a write of a leased job: the write would fail, and a job
whose outcome cannot be written runs again and again (a poison job). Error texts are ours to write, so
they are made storable; a handler's result is the handler's, so a result that cannot be stored fails its
job with a message that names the offending value.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_ERROR_CHARS = 4000


def storable_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as Postgres can store it: NUL characters dropped, lone surrogates (from undecodable bytes)
    written as backslash escapes (`caf\\udce9`), at most `limit` characters."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit]


def json_problem(value: Any, path: str = "result") -> str | None:
    """Why `value` cannot be stored as jsonb, naming where (`result['images'][2]: ...`); None if it can."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: {value!r} is not a JSON number"
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: key {key!r} is not text (JSON object keys are strings)"
            if problem := _text_problem(key, f"{path} key {_short(key)}"):
                return problem
            if problem := json_problem(item, f"{path}[{_short(key)}]"):
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if problem := json_problem(item, f"{path}[{i}]"):
                return problem
        return None
    return f"{path}: a {type(value).__name__} is not a JSON value"


def checked_json(value: Any, path: str = "result") -> str | None:
    """json_problem, plus what only encoding finds (integers too long, nesting too deep, cycles)."""
    try:
        if problem := json_problem(value, path):
            return problem
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"{path}: cannot be written as JSON ({storable_text(str(exc), 200)})"
    except RecursionError:
        return f"{path}: nested too deeply (or refers to itself) to be written as JSON"
    return None


def _text_problem(text: str, path: str) -> str | None:
    if "\x00" in text:
        return f"{path}: text contains a NUL character (\\u0000), which Postgres cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"{path}: text contains a lone surrogate ({text[exc.start]!r} at position {exc.start}), "
            "which is not valid Unicode; decode bytes with errors='replace' or keep them as base64"
        )
    return None


def _short(key: str) -> str:
    shown = storable_text(key, 40)
    return repr(shown if len(key) <= 40 else shown + "...")
