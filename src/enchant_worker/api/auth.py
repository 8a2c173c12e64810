"""API keys and rights.

A key is `ew_` followed by 43 random URL-safe characters; only its SHA-256 is stored (a key has 256
bits of entropy, so a fast hash is enough: nobody can guess it from the hash). Roles:

- `admin`: everything, including rows with no owner.
- `user`: acts for one user: their own jobs, LoRAs, presets, images and uploads, public LoRAs and
  presets, and the stories where that user is the owner or an accepted collaborator (rights per role:
  `intake.rights`). What a user's jobs may name and ask for is checked by `intake` (one place for the
  API, the CLI and the worker).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from enchant_worker.api.errors import Forbidden, NotFound
from enchant_worker.api.store import Row, Store
from enchant_worker.intake import rights
from enchant_worker.intake.actor import ADMIN as ADMIN_ROLE
from enchant_worker.intake.actor import USER as USER_ROLE
from enchant_worker.intake.actor import Actor
from enchant_worker.intake.rights import ADMIN, COLLABORATOR_RIGHTS, READ, WRITE

__all__ = [
    "ADMIN",
    "COLLABORATOR_RIGHTS",
    "READ",
    "WRITE",
    "Principal",
    "check_access",
    "found",
    "story_rights",
]

KEY_PREFIX = "ew_"
SHOWN_PREFIX_CHARS = 11  # "ew_" and 8 characters: enough to recognise a key in a listing
ROLES = ("admin", "user")


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
    row = store.create_key(
        name=name, prefix=key[:SHOWN_PREFIX_CHARS], key_hash=hash_key(key), role=role, user_id=user_id
    )
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

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, ADMIN_ROLE if self.is_admin else USER_ROLE)

    def owns(self, owner_id: uuid.UUID | None) -> bool:
        return self.is_admin or (owner_id is not None and owner_id == self.user_id)


def story_rights(store: Store, principal: Principal, story_id: uuid.UUID | None) -> frozenset[str]:
    """The rights the caller has on a story (none when the story does not exist)."""
    return rights.story_rights(store.conn, principal.actor, story_id)


def check_access(store: Store, principal: Principal, row: Row, right: str, what: str) -> None:
    """Allows the owner of `row` (its user_id), an admin, or a user with `right` on its story."""
    if principal.owns(row.get("user_id")):
        return
    if right in story_rights(store, principal, row.get("story_id")):
        return
    raise Forbidden(
        f"this key may not {'read' if right == READ else 'change'} {what} (it belongs to another user)"
    )


def found(row: Row | None, what: str) -> Row:
    if row is None:
        raise NotFound(f"no {what}")
    return row
