"""Stories: their metadata (read through the story metadata cache, edited with an edit history entry)
and who works on them, with which rights: invitations, answers, role changes and removals (the rules
are in `api.collaboration`; each change is recorded in edit_history)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from enchant_worker.api import collaboration
from enchant_worker.api.auth import READ, WRITE, Principal, story_rights
from enchant_worker.api.deps import CacheDep, PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON, Forbidden, NotFound, responses
from enchant_worker.api.schemas import (
    CollaboratorCreate,
    CollaboratorPublic,
    CollaboratorUpdate,
    StoryPublic,
    StoryUpdate,
)
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import COLLABORATION

router = APIRouter(prefix="/stories", tags=["collaboration"], responses=COMMON)
FEATURE = COLLABORATION


def _check(store: Store, principal: Principal, story_id: uuid.UUID, right: str) -> None:
    """404 for an unknown story, 403 without the right (rights are read fresh, never cached)."""
    if store.story_access(story_id, principal.user_id) is None:
        raise NotFound(f"no story with id {story_id}")
    if right not in story_rights(store, principal, story_id):
        raise Forbidden(f"this key may not {'read' if right == READ else 'change'} story {story_id}")


@router.get("/{story_id}", response_model=StoryPublic)
def get_story(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep, cache: CacheDep) -> Row:
    """The story's metadata: readable by its owner, its accepted collaborators and admins. Served from
    the story metadata cache (shared with the prompt builder); a change made through this API shows at once."""
    _check(store, principal, story_id, READ)
    story = cache.story_metadata(str(story_id), lambda: store.story_metadata(story_id))
    if story is None:  # deleted since the rights check
        raise NotFound(f"no story with id {story_id}")
    metadata: Row = story
    return metadata


@router.patch("/{story_id}", response_model=StoryPublic)
def update_story(
    story_id: uuid.UUID, body: StoryUpdate, store: StoreDep, principal: PrincipalDep, cache: CacheDep
) -> Row:
    """Change the title, description, genre or style preference (a field left out is unchanged). Needs
    write rights: the owner, an accepted contributor or editor (or a collaborator granted `write`), an
    admin. What changed is recorded in `edit_history` (with `comment`); the cached metadata is dropped."""
    _check(store, principal, story_id, WRITE)
    changes = body.model_dump(exclude_unset=True)
    comment = changes.pop("comment", None)
    try:
        row = store.update_story(story_id, changes, user_id=principal.user_id, comment=comment)
    finally:
        cache.invalidate_story(story_id)  # after the commit (update_story's transaction has ended)
    if row is None:
        raise NotFound(f"no story with id {story_id}")
    return row


@router.get("/{story_id}/collaborators", response_model=list[CollaboratorPublic])
def list_collaborators(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[Row]:
    """The story's collaborators: readable by its owner, its accepted collaborators and admins."""
    _check(store, principal, story_id, READ)
    return store.collaborators(story_id)


@router.post(
    "/{story_id}/collaborators",
    status_code=status.HTTP_201_CREATED,
    response_model=CollaboratorPublic,
    responses=responses(409),
)
def invite_collaborator(
    story_id: uuid.UUID, body: CollaboratorCreate, store: StoreDep, principal: PrincipalDep
) -> Row:
    """Invite an existing user (by `user_id` or `email`) with a role (`owner` only by the story's owner)
    and optional extra `permissions`. Needs admin rights on the story: its owner, a collaborator with
    admin rights, an admin key. The invitation is pending until the user accepts it; a user invited
    already (whatever the answer) is a 409 naming that invitation; an unknown user is a 404."""
    return collaboration.invite(store, principal, story_id, body)


@router.post(
    "/{story_id}/collaborators/{collaborator_id}/accept",
    response_model=CollaboratorPublic,
    responses=responses(409),
)
def accept_invitation(
    story_id: uuid.UUID, collaborator_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> Row:
    """The invited user accepts (only them): the role's rights apply from now on. Accepting again
    changes nothing; a declined invitation cannot be accepted (409)."""
    return collaboration.answer(store, principal, story_id, collaborator_id, accept=True)


@router.post(
    "/{story_id}/collaborators/{collaborator_id}/decline",
    response_model=CollaboratorPublic,
    responses=responses(409),
)
def decline_invitation(
    story_id: uuid.UUID, collaborator_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> Row:
    """The invited user declines (only them). Declining again changes nothing; an accepted invitation
    is left with DELETE instead (409)."""
    return collaboration.answer(store, principal, story_id, collaborator_id, accept=False)


@router.patch("/{story_id}/collaborators/{collaborator_id}", response_model=CollaboratorPublic)
def update_collaborator(
    story_id: uuid.UUID,
    collaborator_id: uuid.UUID,
    body: CollaboratorUpdate,
    store: StoreDep,
    principal: PrincipalDep,
) -> Row:
    """Change a collaborator's role or permissions (admin rights on the story; the owner role, given or
    taken, only by the story's owner). A right granted in `permissions` stays across role changes."""
    return collaboration.update(store, principal, story_id, collaborator_id, body)


@router.delete(
    "/{story_id}/collaborators/{collaborator_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def remove_collaborator(
    story_id: uuid.UUID, collaborator_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> Response:
    """Remove a collaborator or an invitation (admin rights on the story; one with the owner role only
    by the story's owner), or leave: a collaborator may always remove themselves."""
    collaboration.remove(store, principal, story_id, collaborator_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
