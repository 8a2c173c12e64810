"""Generation presets: create, read, update, delete. Users manage their own and read public ones."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from enchant_worker.api import pagination
from enchant_worker.api.auth import Principal, found
from enchant_worker.api.deps import PrincipalDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, Forbidden, responses
from enchant_worker.api.schemas import PresetCreate, PresetPage, PresetPublic, PresetUpdate
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION

router = APIRouter(prefix="/presets", tags=["presets"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _preset(store: Store, principal: Principal, preset_id: uuid.UUID, *, write: bool) -> Row:
    row = found(store.preset(preset_id), f"preset with id {preset_id}")
    if principal.owns(row["user_id"]) or (not write and row["is_public"]):
        return row
    raise Forbidden(f"this key may not {'change' if write else 'read'} preset {preset_id} (another user's)")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PresetPublic)
def create_preset(body: PresetCreate, store: StoreDep, principal: PrincipalDep) -> Row:
    """A preset owned by the key's user (an admin key without a user creates a shared one)."""
    return store.create_preset(user_id=principal.user_id, **body.model_dump())


@router.get("", response_model=PresetPage, responses=responses(400))
def list_presets(
    state: StateDep,
    store: StoreDep,
    principal: PrincipalDep,
    owner: Annotated[uuid.UUID | None, Query(description="one user's presets")] = None,
    is_public: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> PresetPage:
    """Own presets and public ones, newest first (all for an admin), filtered; follow `next_cursor`."""
    filters: dict[str, Any] = {"owner": owner, "is_public": is_public}
    secret = state.secret(store, "cursor")
    rows = store.presets(
        viewer=None if principal.is_admin else principal.user_id,
        limit=limit + 1,
        after=pagination.position(secret, cursor, filters),
        **filters,
    )
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return PresetPage(items=[PresetPublic.model_validate(r) for r in items], next_cursor=next_cursor)


@router.get("/{preset_id}", response_model=PresetPublic)
def get_preset(preset_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Row:
    return _preset(store, principal, preset_id, write=False)


@router.patch("/{preset_id}", response_model=PresetPublic)
def update_preset(preset_id: uuid.UUID, body: PresetUpdate, store: StoreDep, principal: PrincipalDep) -> Row:
    """Change the fields given; a field left out is unchanged."""
    _preset(store, principal, preset_id, write=True)
    changes = body.model_dump(exclude_unset=True)
    return found(store.update_preset(preset_id, changes), f"preset with id {preset_id}")


@router.delete("/{preset_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_preset(preset_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Response:
    _preset(store, principal, preset_id, write=True)
    store.delete_preset(preset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
