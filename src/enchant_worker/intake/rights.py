"""A user's rights on a story: owner, or accepted collaborator with a role and extra permissions.

Roles give rights (viewer: read; contributor and editor: read and write; owner: read, write and admin)
and the collaboration's `permissions` JSON grants more: `{"write": true}` lets a viewer write. `view` (a
reader's, which only analytics events ask for) comes with read, or with the story being published.
"""

from __future__ import annotations

import uuid
from typing import Any

from enchant_worker.intake.actor import Actor
from enchant_worker.jobspecs.base import READ, VIEW, WRITE
from enchant_worker.sql import q

ADMIN = "admin"
ALL_RIGHTS = frozenset({READ, WRITE, ADMIN})
COLLABORATOR_RIGHTS = {
    "viewer": frozenset({READ}),
    "contributor": frozenset({READ, WRITE}),
    "editor": frozenset({READ, WRITE}),
    "owner": ALL_RIGHTS,
}


def story_rights(conn, actor: Actor, story_id: uuid.UUID | None) -> frozenset[str]:
    """The rights `actor` has on a story (none when the story does not exist)."""
    if story_id is None:
        return frozenset()
    row = conn.execute(q("intake_story_access"), {"story_id": story_id, "user_id": actor.user_id}).fetchone()
    if row is None:
        return frozenset()
    return rights_from_row(actor, row)


def rights_from_row(actor: Actor, row: Any) -> frozenset[str]:
    """Rights from a row of intake_story_access (`owner_id`, `collaborator_role`, `permissions`,
    `published`)."""
    rights = _granted(actor, row)
    return rights | {VIEW} if READ in rights or row["published"] else rights


def _granted(actor: Actor, row: Any) -> frozenset[str]:
    if actor.is_admin or (row["owner_id"] is not None and row["owner_id"] == actor.user_id):
        return ALL_RIGHTS
    if row["collaborator_role"] is None:
        return frozenset()
    rights = set(COLLABORATOR_RIGHTS.get(row["collaborator_role"], ()))
    permissions: Any = row["permissions"] or {}
    if isinstance(permissions, dict):
        rights |= {r for r in ALL_RIGHTS if permissions.get(r) is True}
    return frozenset(rights)
