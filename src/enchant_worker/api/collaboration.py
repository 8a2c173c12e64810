"""Story collaboration: invitations, the invitee's answer, role changes and removals. Each change is
one transaction that also records an `edit_history` entry (entity_type 'story_collaborator').

Who may do what:

- invite, change a role or permissions, remove: whoever has `admin` rights on the story (its owner, a
  collaborator with the owner role or granted `admin`, an admin key);
- grant the `owner` role, or change or remove a collaborator who has it: only the story's owner (and
  admin keys, which may do everything);
- accept or decline: only the invited user (an admin key does not answer for someone else);
- leave: a collaborator may always remove themselves.

Stored permissions are the collaborator's effective rights: the role's rights (viewer: read;
contributor and editor: read and write; owner: read, write and admin) plus those granted on top. A
grant is kept across role changes; a right the role itself gives cannot be withdrawn (choose another
role).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from enchant_worker.api.auth import ADMIN, COLLABORATOR_RIGHTS, READ, WRITE, Principal, story_rights
from enchant_worker.api.errors import Conflict, Forbidden, NotFound, Unprocessable
from enchant_worker.api.schemas import CollaboratorCreate, CollaboratorPermissions, CollaboratorUpdate
from enchant_worker.api.store import Row, Store

ENTITY = "story_collaborator"
RIGHTS = (READ, WRITE, ADMIN)
FIELDS = ("story_id", "user_id", "role", "permissions", "invited_by", "invited_at", "accepted_at", "status")


def _json(value: Any) -> Any:
    """As stored in edit_history.changes (UUIDs and datetimes as strings)."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


def _diff(old: Row, new: Row, fields: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = _json({f: {"old": old[f], "new": new[f]} for f in fields if old[f] != new[f]})
    return changes


def _story_rights(store: Store, principal: Principal, story_id: uuid.UUID) -> tuple[Row, frozenset[str]]:
    """The story (with `owner_id`) and the caller's rights on it; 404 when there is no such story."""
    story = store.story_access(story_id, principal.user_id)
    if story is None:
        raise NotFound(f"no story with id {story_id}")
    return story, story_rights(store, principal, story_id)


def _may_administer(rights: frozenset[str], story_id: uuid.UUID, what: str) -> None:
    if ADMIN not in rights:
        raise Forbidden(f"only the owner of story {story_id} or a collaborator with admin rights may {what}")


def _is_story_owner(principal: Principal, owner_id: uuid.UUID | None) -> bool:
    return principal.is_admin or (owner_id is not None and owner_id == principal.user_id)


def _collaborator(store: Store, story_id: uuid.UUID, collaborator_id: uuid.UUID) -> Row:
    row = store.collaborator(story_id, collaborator_id, lock=True)
    if row is None:
        raise NotFound(f"no collaborator with id {collaborator_id} on story {story_id}")
    return row


def permissions_for(
    role: str | None,
    given: CollaboratorPermissions | None,
    *,
    current: Any = None,
    current_role: str | None = None,
) -> dict[str, bool]:
    """The permissions to store: the role's rights, the grants kept from `current` (the rights it has
    beyond `current_role`'s) and the changes in `given`."""
    role_rights = COLLABORATOR_RIGHTS.get(role or "", frozenset())
    granted: set[str] = set()
    if isinstance(current, dict) and current_role is not None:
        granted = {
            r for r in RIGHTS if current.get(r) is True and r not in COLLABORATOR_RIGHTS.get(current_role, ())
        }
    for right, value in (given.model_dump(exclude_none=True) if given else {}).items():
        if value:
            granted.add(right)
        elif right in role_rights:
            raise Unprocessable(
                ("body", "permissions", right),
                f"the {role} role always has the {right!r} right; to withdraw it, choose a role without it",
            )
        else:
            granted.discard(right)
    return {r: r in role_rights or r in granted for r in RIGHTS}


def _invitee(store: Store, body: CollaboratorCreate) -> uuid.UUID:
    if (body.user_id is None) == (body.email is None):
        raise Unprocessable(("body", "user_id"), "name the user to invite by exactly one of user_id or email")
    if body.user_id is not None:
        if not store.user_exists(body.user_id):
            raise NotFound(f"no user with id {body.user_id} (body.user_id)")
        return body.user_id
    assert body.email is not None  # exactly one of the two, checked above
    users = store.users_by_email(body.email)
    if not users or (users[0]["email"] != body.email and len(users) > 1):
        raise NotFound(
            f"no user with email {body.email!r} (body.email)"
            if not users
            else f"several users have the email {body.email!r} but for case; give its exact spelling"
        )
    user_id: uuid.UUID = users[0]["id"]
    return user_id


def invite(store: Store, principal: Principal, story_id: uuid.UUID, body: CollaboratorCreate) -> Row:
    """A pending invitation of an existing user; 409 when the user owns the story or is invited already."""
    story, rights = _story_rights(store, principal, story_id)
    _may_administer(rights, story_id, "invite collaborators")
    if body.role == "owner" and not _is_story_owner(principal, story["owner_id"]):
        raise Forbidden(f"only the owner of story {story_id} may grant the owner role")
    user_id = _invitee(store, body)
    permissions = permissions_for(body.role, body.permissions)
    with store.transaction():
        locked = store.lock_story_owner(story_id)
        if locked is None:
            raise NotFound(f"no story with id {story_id}")
        if locked["owner_id"] == user_id:
            raise Conflict(f"user {user_id} owns story {story_id}: an owner needs no invitation")
        existing = store.collaborator_of_user(story_id, user_id)
        if existing is not None:
            raise Conflict(
                f"user {user_id} already has invitation {existing['id']} to story {story_id} "
                f"(status {existing['status']}, role {existing['role']}); change it with PATCH "
                f"/v2/stories/{story_id}/collaborators/{existing['id']} or remove it first"
            )
        row = store.invite_collaborator(
            story_id=story_id,
            user_id=user_id,
            role=body.role,
            permissions=permissions,
            invited_by=principal.user_id,
        )
        store.add_edit_history(
            entity_type=ENTITY,
            entity_id=row["id"],
            user_id=principal.user_id,
            action_type="create",
            changes=_json({f: row[f] for f in FIELDS}),
            comment=body.comment,
        )
    return row


def answer(
    store: Store, principal: Principal, story_id: uuid.UUID, collaborator_id: uuid.UUID, accept: bool
) -> Row:
    """The invitee accepts or declines. Answering the same way again changes nothing; accepting a
    declined invitation, or declining an accepted one, is a 409."""
    _story_rights(store, principal, story_id)
    status = "accepted" if accept else "declined"
    with store.transaction():
        row = _collaborator(store, story_id, collaborator_id)
        if principal.user_id is None or row["user_id"] != principal.user_id:
            raise Forbidden(
                f"only the invited user may {'accept' if accept else 'decline'} invitation {collaborator_id}"
            )
        if row["status"] == status:
            return row
        if row["status"] != "pending":
            raise Conflict(
                f"invitation {collaborator_id} was declined; ask to be invited again"
                if accept
                else f"invitation {collaborator_id} was accepted; to leave the story, DELETE "
                f"/v2/stories/{story_id}/collaborators/{collaborator_id}"
            )
        new = store.set_collaborator_status(collaborator_id, status)
        store.add_edit_history(
            entity_type=ENTITY,
            entity_id=collaborator_id,
            user_id=principal.user_id,
            action_type="update",
            changes=_diff(row, new, ("status", "accepted_at")),
        )
    return new


def update(
    store: Store,
    principal: Principal,
    story_id: uuid.UUID,
    collaborator_id: uuid.UUID,
    body: CollaboratorUpdate,
) -> Row:
    """Change the role or permissions; a body that changes nothing records nothing."""
    story, rights = _story_rights(store, principal, story_id)
    _may_administer(rights, story_id, "change collaborators")
    with store.transaction():
        row = _collaborator(store, story_id, collaborator_id)
        role = body.role or row["role"]
        if "owner" in (role, row["role"]) and not _is_story_owner(principal, story["owner_id"]):
            raise Forbidden(
                f"only the owner of story {story_id} may grant the owner role or change a "
                "collaborator who has it"
            )
        permissions = permissions_for(
            role, body.permissions, current=row["permissions"], current_role=row["role"]
        )
        if role == row["role"] and permissions == row["permissions"]:
            return row
        new = store.update_collaborator(collaborator_id, role=role, permissions=permissions)
        store.add_edit_history(
            entity_type=ENTITY,
            entity_id=collaborator_id,
            user_id=principal.user_id,
            action_type="update",
            changes=_diff(row, new, ("role", "permissions")),
            comment=body.comment,
        )
    return new


def remove(store: Store, principal: Principal, story_id: uuid.UUID, collaborator_id: uuid.UUID) -> None:
    """The story's administrators remove a collaborator (or an invitation); a collaborator may leave."""
    story, rights = _story_rights(store, principal, story_id)
    with store.transaction():
        row = _collaborator(store, story_id, collaborator_id)
        leaving = principal.user_id is not None and row["user_id"] == principal.user_id
        if not leaving:
            _may_administer(rights, story_id, "remove collaborators")
            if row["role"] == "owner" and not _is_story_owner(principal, story["owner_id"]):
                raise Forbidden(
                    f"only the owner of story {story_id} may remove a collaborator with the owner role"
                )
        store.delete_collaborator(collaborator_id)
        store.add_edit_history(
            entity_type=ENTITY,
            entity_id=collaborator_id,
            user_id=principal.user_id,
            action_type="delete",
            changes=_json({f: row[f] for f in FIELDS}),
            comment="left the story" if leaving else None,
        )
