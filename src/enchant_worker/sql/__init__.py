"""All SQL of the project, as named blocks in the .sql files of this folder, loaded once.

A block starts with a line `-- name --` followed by a comment line that says what it does:

    -- lease_jobs --
    -- Take the most urgent runnable jobs...
    UPDATE ...

Parameters use psycopg's `%(name)s` style.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_HEADER = re.compile(r"^-- ([a-z_0-9]+) --$", re.MULTILINE)


def _parse(text: str) -> dict[str, str]:
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def queries() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.sql")):
        for name, body in _parse(path.read_text()).items():
            if name in found:
                raise RuntimeError(f"SQL block {name!r} is defined twice (second in {path.name})")
            found[name] = body
    return found


def q(name: str) -> str:
    """The text of the named query."""
    return queries()[name]
