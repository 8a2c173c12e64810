"""Stories: their metadata (read through the story metadata cache, edited with an edit history entry)
and who works on them, with which rights."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from enchant_worker.api.auth import READ, WRITE, Principal, story_rights
from enchant_worker.api.deps import CacheDep, PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON, Forbidden, NotFound
from enchant_worker.api.schemas import CollaboratorPublic, StoryPublic, StoryUpdate
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
    return story


@router.patch("/{story_id}", response_model=StoryPublic)
def update_story(story_id: uuid.UUID, body: StoryUpdate, store: StoreDep, principal: PrincipalDep,
                 cache: CacheDep) -> Row:
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
