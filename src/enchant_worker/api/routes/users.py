"""The caller's own preferences (users.preferences), read through the user preferences cache."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from enchant_worker.api.auth import Principal
from enchant_worker.api.deps import CacheDep, PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON, NotFound, Unprocessable
from enchant_worker.api.schemas import (
    MAX_JSON_DEPTH,
    MAX_PREFERENCE_KEYS,
    MAX_PREFERENCES_BYTES,
    PreferencesUpdate,
    storable_json,
)
from enchant_worker.api.versions import BASIC_GENERATION

# Preferences steer generation (the prompt builder reads `style_preference`): every version has them.
router = APIRouter(prefix="/users", tags=["users"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _user_id(principal: Principal):
    if principal.user_id is None:
        raise NotFound("this key acts for no user (an admin key without one), so it has no preferences")
    return principal.user_id


def _checked(body: PreferencesUpdate) -> dict[str, Any]:
    """The body as stored: every key kept, each value storable as jsonb, the whole bounded."""
    preferences = body.model_dump(exclude_unset=True)
    if len(preferences) > MAX_PREFERENCE_KEYS:
        raise Unprocessable(("body",), f"at most {MAX_PREFERENCE_KEYS} keys, not {len(preferences)}")
    for key, value in preferences.items():
        try:
            storable_json(key)
            storable_json(value, 1)
        except ValueError as exc:
            raise Unprocessable(("body", key), f"{exc} (at most {MAX_JSON_DEPTH} levels, finite numbers, "
                                "no NUL characters)") from None
    size = len(json.dumps(preferences, separators=(",", ":")).encode())
    if size > MAX_PREFERENCES_BYTES:
        raise Unprocessable(("body",), f"preferences are {size} bytes as JSON; at most {MAX_PREFERENCES_BYTES}")
    return preferences


@router.get("/me/preferences", response_model=dict[str, Any])
def get_preferences(store: StoreDep, principal: PrincipalDep, cache: CacheDep) -> dict[str, Any]:
    """The preferences of the user the key acts for. Served from the user preferences cache (shared with
    the prompt builder, up to 5 minutes); a change made through this API shows at once."""
    user_id = _user_id(principal)
    preferences = cache.user_preferences(str(user_id), lambda: store.user_preferences(user_id))
    if preferences is None:
        raise NotFound(f"no user with id {user_id}")
    return preferences if isinstance(preferences, dict) else {}


@router.put("/me/preferences", response_model=dict[str, Any])
def put_preferences(body: PreferencesUpdate, store: StoreDep, principal: PrincipalDep,
                    cache: CacheDep) -> dict[str, Any]:
    """Replace the preferences of the user the key acts for with the body (a JSON object of at most
    16 KiB and 100 keys; `style_preference`, when given, a string of at most 100 characters or null)."""
    user_id = _user_id(principal)
    preferences = _checked(body)
    try:
        stored = store.set_user_preferences(user_id, preferences)
    finally:
        cache.invalidate_user_preferences(user_id)
    if stored is None:
        raise NotFound(f"no user with id {user_id}")
    return stored
