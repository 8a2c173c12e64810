"""Opaque, signed keyset cursors. A cursor names the last row of a page and the filters it was made
for; its HMAC makes any change to it (or its use with other filters) a 400, never a wrong page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from enchant_worker.api.errors import BadRequest

MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _filters_hash(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode(secret: bytes, key: list[Any], filters: dict[str, Any]) -> str:
    """A cursor naming the row with sort `key` (its sort columns' values, the id last)."""
    payload = json.dumps({"k": key, "f": _filters_hash(filters)}, separators=(",", ":"), default=str).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode(secret: bytes, cursor: str, filters: dict[str, Any]) -> list[Any]:
    """The sort key a cursor names (as JSON values: the caller types them); 400 when it was changed or
    made for other filters."""
    bad = BadRequest(
        "cursor: invalid or tampered pagination cursor; pass the next_cursor of a previous "
        "page unchanged, with the same filters, or omit it to start from the first page"
    )
    try:
        payload_text, mac_text = cursor.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, UnicodeError):
        raise bad from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise bad
    try:
        data = json.loads(payload)
        key = data["k"]
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if not isinstance(key, list):
        raise bad
    if data.get("f") != _filters_hash(filters):
        raise BadRequest(
            "cursor: this cursor was made for other filters; repeat the filters of the first "
            "page or omit the cursor"
        )
    return key


def page(
    secret: bytes,
    rows: list[dict[str, Any]],
    limit: int,
    filters: dict[str, Any],
    key: Callable[[dict[str, Any]], list[Any]] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` rows (fetched as limit + 1) and the cursor of the next page, or None on the last
    page. Every list route pages this way; `key` gives a row's sort key (default: newest first by
    (created_at, id))."""
    items = rows[:limit]
    if len(rows) <= limit:
        return items, None
    last = items[-1]
    return items, encode(
        secret, key(last) if key else [last["created_at"].isoformat(), str(last["id"])], filters
    )


def position(secret: bytes, cursor: str | None, filters: dict[str, Any]) -> tuple[datetime, uuid.UUID] | None:
    """Where a (created_at, id) page the cursor names starts (None: the first page)."""
    if not cursor:
        return None
    key = decode(secret, cursor, filters)
    try:
        created, row_id = key
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError):
        raise BadRequest(
            "cursor: invalid or tampered pagination cursor; pass the next_cursor of a previous page unchanged"
        ) from None


def key_position(
    secret: bytes, cursor: str | None, filters: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    """A cursor's sort key as query parameters `after_<name>` (all None on the first page)."""
    if not cursor:
        return {f"after_{n}": None for n in names}
    key = decode(secret, cursor, filters)
    if len(key) != len(names):
        raise BadRequest("cursor: this cursor was made for another list or order; omit it to start again")
    return {f"after_{n}": v for n, v in zip(names, key, strict=True)}
