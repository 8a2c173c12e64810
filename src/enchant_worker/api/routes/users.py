"""The caller's own preferences (users.preferences, through the user preferences cache) and tier; admins
list users with their tier, quota overrides and today's usage, and change them."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from enchant_worker.api import pagination
from enchant_worker.api.auth import Principal
from enchant_worker.api.deps import AdminDep, CacheDep, PrincipalDep, SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, NotFound, Unprocessable, responses
from enchant_worker.api.schemas import (
    MAX_PREFERENCE_KEYS,
    MAX_PREFERENCES_BYTES,
    PreferencesUpdate,
    TierUpdate,
    UserTier,
    storable_json,
)
from enchant_worker.api.versions import BASIC_GENERATION
from enchant_worker.config import Settings
from enchant_worker.intake.tiers import check_overrides, load_tiers
from enchant_worker.jobspecs.limits import MAX_JSON_DEPTH

# Preferences steer generation (the prompt builder reads `style_preference`): every version has them.
router = APIRouter(prefix="/users", tags=["users"], responses=COMMON)
FEATURE = BASIC_GENERATION


def _user_id(principal: Principal) -> uuid.UUID:
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
            raise Unprocessable(
                ("body", key), f"{exc} (at most {MAX_JSON_DEPTH} levels, finite numbers, no NUL characters)"
            ) from None
    size = len(json.dumps(preferences, separators=(",", ":")).encode())
    if size > MAX_PREFERENCES_BYTES:
        raise Unprocessable(
            ("body",), f"preferences are {size} bytes as JSON; at most {MAX_PREFERENCES_BYTES}"
        )
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
def put_preferences(
    body: PreferencesUpdate, store: StoreDep, principal: PrincipalDep, cache: CacheDep
) -> dict[str, Any]:
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
    preferences_row: dict[str, Any] = stored
    return preferences_row


def _tier_view(row: dict[str, Any], settings: Settings) -> UserTier:
    tier = load_tiers(settings.tiers_path)[row["subscription_tier"]].with_overrides(row["quota_overrides"])
    return UserTier(
        id=row["id"],
        email=row.get("email"),
        subscription_tier=row["subscription_tier"],
        quota_overrides=row["quota_overrides"] or {},
        effective=tier.limits(),
        usage_today=row.get("usage_today") or {},
        active_jobs=row.get("active_jobs") or 0,
    )


@router.get("/me/tier", response_model=UserTier)
def get_my_tier(store: StoreDep, settings: SettingsDep, principal: PrincipalDep) -> UserTier:
    """The caller's tier, its limits (with any exception an admin set) and what was used today."""
    rows = store.user_tiers(user_id=_user_id(principal), limit=1)
    if not rows:
        raise NotFound(f"no user with id {principal.user_id}")
    return _tier_view(rows[0], settings)


class UserPage(BaseModel):
    items: list[UserTier]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


@router.get("", response_model=UserPage, responses=responses(400))
def list_users(
    state: StateDep,
    store: StoreDep,
    settings: SettingsDep,
    admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> UserPage:
    """Admin keys: users with their tier, quota overrides, effective limits and today's usage, newest
    first; follow `next_cursor` for the next page."""
    secret = state.secret(store, "cursor")
    rows = store.user_tiers(user_id=None, limit=limit + 1, after=pagination.position(secret, cursor, {}))
    items, next_cursor = pagination.page(secret, rows, limit, {})
    return UserPage(items=[_tier_view(r, settings) for r in items], next_cursor=next_cursor)


@router.patch("/{user_id}/tier", response_model=UserTier)
def set_tier(
    user_id: uuid.UUID, body: TierUpdate, store: StoreDep, settings: SettingsDep, admin: AdminDep
) -> UserTier:
    """Admin keys: change a user's subscription tier and/or replace their quota overrides (e.g.
    `{"images_per_day": 500}`; `{}` removes every exception)."""
    overrides = None
    if body.quota_overrides is not None:
        try:
            overrides = check_overrides(body.quota_overrides)
        except ValueError as exc:
            raise Unprocessable(("body", "quota_overrides"), f"quota_overrides.{exc}") from None
    if store.set_user_tier(user_id, body.subscription_tier, overrides) is None:
        raise NotFound(f"no user with id {user_id}")
    return _tier_view(store.user_tiers(user_id=user_id, limit=1)[0], settings)
