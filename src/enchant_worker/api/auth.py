"""API keys and rights.

A key is `ew_` followed by 43 random URL-safe characters; only its SHA-256 is stored (a key has 256
bits of entropy, so a fast hash is enough: nobody can guess it from the hash). Roles:

- `admin`: everything.
- `user`: acts for one user: their own jobs, LoRAs, presets and images, and the stories where that user
  is the owner or an accepted collaborator. A collaborator's role gives rights (viewer: read;
  contributor and editor: read and write; owner: read, write and admin) and the `permissions` JSON
  grants more: `{"write": true}` lets a viewer write.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from enchant_worker.api.errors import Forbidden, NotFound
from enchant_worker.api.store import Row, Store

KEY_PREFIX = "ew_"
SHOWN_PREFIX_CHARS = 11  # "ew_" and 8 characters: enough to recognise a key in a listing
ROLES = ("admin", "user")
READ, WRITE, ADMIN = "read", "write", "admin"
COLLABORATOR_RIGHTS = {
    "viewer": frozenset({READ}),
    "contributor": frozenset({READ, WRITE}),
    "editor": frozenset({READ, WRITE}),
    "owner": frozenset({READ, WRITE, ADMIN}),
}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: Store, *, name: str, role: str, user_id: uuid.UUID | None) -> tuple[str, Row]:
    """Makes a key; returns it (shown once, never stored) and its row."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "user" and user_id is None:
        raise ValueError("a user key needs the user it acts for")
    key = new_key()
    row = store.create_key(name=name, prefix=key[:SHOWN_PREFIX_CHARS], key_hash=hash_key(key), role=role,
                           user_id=user_id)
    return key, row


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and the user it acts for."""

    key_id: uuid.UUID
    name: str
    role: str
    user_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def owns(self, owner_id: uuid.UUID | None) -> bool:
        return self.is_admin or (owner_id is not None and owner_id == self.user_id)


def story_rights(store: Store, principal: Principal, story_id: uuid.UUID | None) -> frozenset[str]:
    """The rights the caller has on a story (none when the story does not exist)."""
    if story_id is None:
        return frozenset()
    if principal.is_admin:
        return frozenset({READ, WRITE, ADMIN})
    row = store.story_access(story_id, principal.user_id)
    if row is None:
        return frozenset()
    if row["owner_id"] is not None and row["owner_id"] == principal.user_id:
        return frozenset({READ, WRITE, ADMIN})
    if row["collaborator_role"] is None:
        return frozenset()
    rights = set(COLLABORATOR_RIGHTS.get(row["collaborator_role"], ()))
    permissions: Any = row["permissions"] or {}
    if isinstance(permissions, dict):
        rights |= {r for r in (READ, WRITE, ADMIN) if permissions.get(r) is True}
    return frozenset(rights)


def check_access(store: Store, principal: Principal, row: Row, right: str, what: str) -> None:
    """Allows the owner of `row` (its user_id), an admin, or a user with `right` on its story."""
    if principal.owns(row.get("user_id")):
        return
    if right in story_rights(store, principal, row.get("story_id")):
        return
    raise Forbidden(f"this key may not {'read' if right == READ else 'change'} {what} (it belongs to another user)")


def found(row: Row | None, what: str) -> Row:
    if row is None:
        raise NotFound(f"no {what}")
    return row
