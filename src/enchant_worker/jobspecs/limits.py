"""Bounds on caller-supplied JSON (job metadata): nesting depth, string and key lengths, and text that
Postgres cannot store. Torch-free and database-free, so the API, the CLI and the queue share one check.

    check_json_limits({"a": {"b": "caf\\udce9"}})
    InvalidJob: metadata.a.b: text contains a lone surrogate (\\udce9) at character 3; ...
"""

from __future__ import annotations

import json
import re
from typing import Any

from enchant_worker.errors import InvalidJob

MAX_JSON_DEPTH = 32  # nested objects/arrays, the outermost one counted as 1
MAX_JSON_STRING_CHARS = 65_536  # one string value
MAX_JSON_KEY_CHARS = 256  # one object key
MAX_IDEMPOTENCY_KEY_CHARS = 200  # as the API's JobCreate.idempotency_key

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_KEY_SHOWN_CHARS = 40  # a long key is cut to this in the path of a message


def check_json_limits(value: Any, *, field: str = "metadata", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuses JSON nested deeper than `max_depth` (MAX_JSON_DEPTH unless a caller is stricter), strings
    or keys above their length bounds, and text Postgres cannot store (lone surrogates, NUL), raising
    InvalidJob whose message starts with the path of the offending value (`metadata.loras[2].name: ...`)."""
    _check(value, field, 1, max_depth)


def check_text(text: str, *, field: str, max_chars: int) -> None:
    """One caller-supplied string (an idempotency key, a name): length, lone surrogates, NUL."""
    if len(text) > max_chars:
        raise InvalidJob(f"{field}: {len(text)} characters, above the limit of {max_chars}")
    _check_storable(text, field)


def _check(value: Any, path: str, depth: int, max_depth: int = MAX_JSON_DEPTH) -> None:
    if isinstance(value, str):
        check_text(value, field=path, max_chars=MAX_JSON_STRING_CHARS)
    elif isinstance(value, dict | list):
        if depth > max_depth:
            raise InvalidJob(
                f"{path}: nested deeper than the limit of {max_depth} levels of objects and arrays"
            )
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, f"{path}[{i}]", depth + 1, max_depth)
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidJob(f"{path}: object keys must be strings, got {type(key).__name__}")
            where = _child(path, key)
            if len(key) > MAX_JSON_KEY_CHARS:
                raise InvalidJob(
                    f"{where}: the key has {len(key)} characters, above the limit of {MAX_JSON_KEY_CHARS}"
                )
            _check_storable(key, where)
            _check(item, where, depth + 1, max_depth)


def _check_storable(text: str, field: str) -> None:
    if "\x00" in text:
        raise InvalidJob(
            f"{field}: text may not contain NUL characters (\\u0000); Postgres cannot store them"
        )
    bad = LONE_SURROGATE.search(text)
    if bad:
        raise InvalidJob(
            f"{field}: text contains a lone surrogate ({json.dumps(bad.group())[1:-1]}) at character "
            f"{bad.start()}, which is not valid Unicode; send UTF-8 text"
        )


def _child(path: str, key: str) -> str:
    """`metadata.name` for a plain key, else `metadata["odd key"]` (ASCII-escaped, cut when long)."""
    if _IDENTIFIER.match(key) and len(key) <= _KEY_SHOWN_CHARS:
        return f"{path}.{key}"
    shown = key if len(key) <= _KEY_SHOWN_CHARS else key[:_KEY_SHOWN_CHARS] + "..."
    return f"{path}[{json.dumps(shown)}]"  # json.dumps escapes all but ASCII: safe to print anywhere
