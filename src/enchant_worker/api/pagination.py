"""Opaque, signed keyset cursors. A cursor names the last row of a page and the filters it was made
for; its HMAC makes any change to it (or its use with other filters) a 400, never a wrong page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
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


def encode(secret: bytes, created_at: datetime, row_id: uuid.UUID, filters: dict[str, Any]) -> str:
    payload = json.dumps({"c": created_at.isoformat(), "i": str(row_id), "f": _filters_hash(filters)},
                         separators=(",", ":")).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode(secret: bytes, cursor: str, filters: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    bad = BadRequest("cursor: invalid or tampered pagination cursor; pass the next_cursor of a previous "
                     "page unchanged, with the same filters, or omit it to start from the first page")
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
        position = (datetime.fromisoformat(data["c"]), uuid.UUID(data["i"]))
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if data.get("f") != _filters_hash(filters):
        raise BadRequest("cursor: this cursor was made for other filters; repeat the filters of the first "
                         "page or omit the cursor")
    return position


def page(secret: bytes, rows: list[dict[str, Any]], limit: int, filters: dict[str, Any]
         ) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` rows (fetched as limit + 1, newest first by (created_at, id)) and the cursor
    of the next page, or None on the last page. Every list route pages this way."""
    items = rows[:limit]
    if len(rows) <= limit:
        return items, None
    return items, encode(secret, items[-1]["created_at"], items[-1]["id"], filters)


def position(secret: bytes, cursor: str | None, filters: dict[str, Any]) -> tuple[datetime, uuid.UUID] | None:
    """Where the page the cursor names starts (None: the first page)."""
    return decode(secret, cursor, filters) if cursor else None
