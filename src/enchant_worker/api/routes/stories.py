"""Collaboration: who works on a story, with which rights."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from enchant_worker.api.auth import READ, story_rights
from enchant_worker.api.deps import PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON, Forbidden, NotFound
from enchant_worker.api.schemas import CollaboratorPublic
from enchant_worker.api.store import Row
from enchant_worker.api.versions import COLLABORATION

router = APIRouter(prefix="/stories", tags=["collaboration"], responses=COMMON)
FEATURE = COLLABORATION


@router.get("/{story_id}/collaborators", response_model=list[CollaboratorPublic])
def list_collaborators(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[Row]:
    """The story's collaborators: readable by its owner, its accepted collaborators and admins."""
    if store.story_access(story_id, principal.user_id) is None:
        raise NotFound(f"no story with id {story_id}")
    if READ not in story_rights(store, principal, story_id):
        raise Forbidden(f"this key may not read story {story_id}")
    return store.collaborators(story_id)
