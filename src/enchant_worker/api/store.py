"""Store: every query the API runs, over one connection (the writes of jobs go through JobQueue)."""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from enchant_worker.cache import load_story_metadata, load_user_preferences
from enchant_worker.db.connection import Connection, one
from enchant_worker.sql import q

Row = dict[str, Any]


class Store:
    def __init__(self, conn: Connection):
        self.conn = conn

    def _one(self, query: str, /, **params: Any) -> Row | None:
        return self.conn.execute(q(query), params).fetchone()

    def _row(self, query: str, /, **params: Any) -> Row:
        """The row of a statement that always returns one (INSERT … RETURNING, an aggregate)."""
        return one(self.conn.execute(q(query), params))

    def _all(self, query: str, /, **params: Any) -> list[Row]:
        return self.conn.execute(q(query), params).fetchall()

    # -- keys and users --------------------------------------------------------------------------

    def create_key(
        self, *, name: str, prefix: str, key_hash: str, role: str, user_id: uuid.UUID | None
    ) -> Row:
        return self._row(
            "api_key_create", name=name, prefix=prefix, key_hash=key_hash, role=role, user_id=user_id
        )

    def list_keys(self) -> list[Row]:
        return self._all("api_key_list")

    def revoke_key(self, ref: str) -> Row | None:
        return self._one("api_key_revoke", ref=ref)

    def authenticate(self, key_hash: str) -> Row | None:
        return self._one("api_key_authenticate", key_hash=key_hash)

    def secret(self, name: str) -> bytes | None:
        row = self._one("api_secret", name=name)
        return bytes(row["secret"]) if row else None

    def ensure_user(self, email: str) -> uuid.UUID:
        user_id: uuid.UUID = self._row("api_user_ensure", email=email)["id"]
        return user_id

    def user_exists(self, user_id: uuid.UUID) -> bool:
        return bool(self._row("api_user_exists", id=user_id)["found"])

    # -- stories and rights ----------------------------------------------------------------------

    def story_access(self, story_id: uuid.UUID, user_id: uuid.UUID | None) -> Row | None:
        return self._one("intake_story_access", story_id=story_id, user_id=user_id)

    def collaborators(self, story_id: uuid.UUID) -> list[Row]:
        return self._all("api_story_collaborators", story_id=story_id)

    def transaction(self) -> AbstractContextManager[psycopg.Transaction]:
        """A transaction on this store's connection (`with store.transaction(): ...`)."""
        return self.conn.transaction()

    def users_by_email(self, email: str) -> list[Row]:
        """The user with exactly this email first, then those matching it case-insensitively (two at most)."""
        return self._all("api_user_by_email", email=email)

    def lock_story_owner(self, story_id: uuid.UUID) -> Row | None:
        """The story's owner (`owner_id`), the story locked until the transaction ends."""
        return self._one("api_story_lock_owner", id=story_id)

    def collaborator(
        self, story_id: uuid.UUID, collaborator_id: uuid.UUID, *, lock: bool = False
    ) -> Row | None:
        """One collaborator of a story; `lock` holds the row until the transaction ends."""
        return self._one(
            "api_collaborator_lock" if lock else "api_collaborator_get", id=collaborator_id, story_id=story_id
        )

    def collaborator_of_user(self, story_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
        """The user's collaboration on the story, whatever its status."""
        return self._one("api_collaborator_of_user", story_id=story_id, user_id=user_id)

    def invite_collaborator(
        self,
        *,
        story_id: uuid.UUID,
        user_id: uuid.UUID,
        role: str,
        permissions: dict[str, bool],
        invited_by: uuid.UUID | None,
    ) -> Row:
        return self._row(
            "api_collaborator_invite",
            story_id=story_id,
            user_id=user_id,
            role=role,
            permissions=Jsonb(permissions),
            invited_by=invited_by,
        )

    def set_collaborator_status(self, collaborator_id: uuid.UUID, status: str) -> Row:
        return self._row("api_collaborator_respond", id=collaborator_id, status=status)

    def update_collaborator(
        self, collaborator_id: uuid.UUID, *, role: str, permissions: dict[str, bool]
    ) -> Row:
        return self._row(
            "api_collaborator_update", id=collaborator_id, role=role, permissions=Jsonb(permissions)
        )

    def delete_collaborator(self, collaborator_id: uuid.UUID) -> bool:
        return self._one("api_collaborator_delete", id=collaborator_id) is not None

    def add_edit_history(
        self,
        *,
        entity_type: str,
        entity_id: uuid.UUID,
        user_id: uuid.UUID | None,
        action_type: str,
        changes: dict[str, Any],
        comment: str | None = None,
    ) -> None:
        """One edit history entry (`changes` must be JSON: convert datetimes and UUIDs to strings first)."""
        self._one(
            "api_edit_history_add",
            entity_type=entity_type,
            entity_id=entity_id,
            user_id=user_id,
            action_type=action_type,
            changes=Jsonb(changes),
            comment=comment,
        )

    def story_metadata(self, story_id: uuid.UUID) -> Row | None:
        """The story in the shape every process caches (read it through `cache.story_metadata`)."""
        return load_story_metadata(self.conn, story_id)

    def update_story(
        self,
        story_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        user_id: uuid.UUID | None,
        comment: str | None = None,
    ) -> Row | None:
        """Changes the given fields and records what changed in edit_history, in one transaction.
        Returns the story's metadata (None when there is no such story). Invalidate the cache after."""
        with self.conn.transaction():
            old = self._one("api_story_lock", id=story_id)
            if old is None:
                return None
            diff = {k: {"old": old[k], "new": v} for k, v in changes.items() if old[k] != v}
            if not diff:
                return self.story_metadata(story_id)
            params: dict[str, Any] = {"id": story_id}
            for name in ("title", "description", "genre", "style_preference"):
                params[f"set_{name}"] = name in diff
                params[name] = changes.get(name)
            row = self._one("api_story_update", **params)
            self._one(
                "api_edit_history_add",
                entity_type="story",
                entity_id=story_id,
                user_id=user_id,
                action_type="update",
                changes=Jsonb(diff),
                comment=comment,
            )
            return row

    def user_preferences(self, user_id: uuid.UUID) -> Any:
        """users.preferences in the cached shape (read it through `cache.user_preferences`)."""
        return load_user_preferences(self.conn, user_id)

    def set_user_preferences(self, user_id: uuid.UUID, preferences: dict[str, Any]) -> Any:
        """Replaces them; None when there is no such user. Invalidate the cache after."""
        row = self._one("api_user_preferences_set", id=user_id, preferences=Jsonb(preferences))
        return None if row is None else row["preferences"]

    # -- jobs (reads) and queue statistics -------------------------------------------------------

    def job(self, job_id: uuid.UUID) -> Row | None:
        return self._one("api_job_get", id=job_id)

    def jobs(
        self,
        *,
        viewer: uuid.UUID | None,
        limit: int,
        status: str | None = None,
        job_type: str | None = None,
        user_id: uuid.UUID | None = None,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        story_id: uuid.UUID | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Row]:
        return self._all(
            "api_job_list",
            viewer=viewer,
            limit=limit,
            status=status,
            job_type=job_type,
            user_id=user_id,
            entity_type=entity_type,
            entity_id=entity_id,
            story_id=story_id,
            created_from=created_from,
            created_to=created_to,
            **_after(after),
        )

    def jobs_by_id_range(self, low: uuid.UUID, high: uuid.UUID, limit: int) -> list[Row]:
        """Jobs whose id lies in [low, high] (search by the first characters of an id)."""
        return self._all("api_job_id_range", low=low, high=high, limit=limit)

    def job_ids_matching(
        self,
        *,
        limit: int,
        status: str | None = None,
        job_type: str | None = None,
        user_id: uuid.UUID | None = None,
        story_id: uuid.UUID | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Row]:
        """The jobs a bulk action applies to (id and status), newest first."""
        return self._all(
            "api_job_ids_matching",
            limit=limit,
            status=status,
            job_type=job_type,
            user_id=user_id,
            story_id=story_id,
            created_from=created_from,
            created_to=created_to,
        )

    def job_actions(self, job_id: uuid.UUID) -> list[Row]:
        return self._all("api_job_actions", job_id=job_id)

    def record_job_action(
        self,
        *,
        job_id: uuid.UUID,
        action: str,
        key_id: uuid.UUID | None,
        key_name: str,
        user_id: uuid.UUID | None,
        from_status: str | None,
        to_status: str | None,
        detail: dict[str, Any] | None = None,
        bulk: bool = False,
    ) -> None:
        """Who did what to a job (the console's and the API's cancel, retry and priority changes)."""
        self._one(
            "api_job_action_record",
            job_id=job_id,
            action=action,
            key_id=key_id,
            key_name=key_name,
            user_id=user_id,
            from_status=from_status,
            to_status=to_status,
            detail=Jsonb(detail or {}),
            bulk=bulk,
        )

    def progress_history(self, job_id: uuid.UUID, limit: int = 2000) -> list[Row]:
        return self._all("api_job_progress_history", job_id=job_id, limit=limit)

    def throughput_binned(self, minutes: int, bucket_s: int) -> list[Row]:
        return self._all("api_queue_throughput_binned", minutes=minutes, bucket_s=bucket_s)

    def scheduler_tasks(self) -> list[Row]:
        return self._all("api_scheduler_tasks")

    def scheduler_failures(self, limit: int) -> list[Row]:
        return self._all("api_scheduler_failures", limit=limit)

    def scheduler_leader(self) -> Row | None:
        return self._one("scheduler_leader")

    def image_costs(self) -> list[Row]:
        return self._all("api_image_costs")

    def queue_counts(self) -> list[Row]:
        return self._all("api_queue_counts")

    def console_counts(self) -> list[Row]:
        """Jobs per type and state: pending and processing all, finished ones of the last 24 hours."""
        return self._all("api_console_counts")

    def oldest_pending(self) -> list[Row]:
        return self._all("api_queue_oldest_pending")

    def throughput(self, minutes: int) -> list[Row]:
        return self._all("api_queue_throughput", minutes=minutes)

    def run_times(self, minutes: int) -> list[Row]:
        return self._all("api_queue_run_times", minutes=minutes)

    def console_failures(self, limit: int) -> list[Row]:
        return self._all("api_console_failures", limit=limit)

    def recent_failures(self, limit: int) -> list[Row]:
        return self._all("api_recent_failures", limit=limit)

    def job_counters(self) -> list[Row]:
        return self._all("api_job_counters")

    def duration_buckets(self) -> list[Row]:
        return self._all("api_job_duration_buckets")

    def workers(self, include_stopped: bool = False) -> list[Row]:
        return self._all("api_workers", include_stopped=include_stopped)

    # -- LoRAs -----------------------------------------------------------------------------------

    def create_lora(self, **values: Any) -> Row:
        return self._row("api_lora_create", **values)

    def user_tiers(
        self, *, user_id: uuid.UUID | None, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> list[Row]:
        return self._all("intake_users", id=user_id, limit=limit, **_after(after))

    def set_user_tier(
        self, user_id: uuid.UUID, tier: str | None, overrides: dict[str, int] | None
    ) -> Row | None:
        return self._one(
            "intake_set_tier",
            id=user_id,
            tier=tier,
            overrides=None if overrides is None else json.dumps(overrides),
        )

    def upload(self, upload_id: uuid.UUID) -> Row | None:
        return self._one("api_upload_get", id=upload_id)

    def lora(self, lora_id: uuid.UUID) -> Row | None:
        return self._one("api_lora_get", id=lora_id)

    def loras(
        self,
        *,
        viewer: uuid.UUID | None,
        me: uuid.UUID | None,
        limit: int,
        status: str | None,
        mine_only: bool,
        owner: uuid.UUID | None = None,
        is_public: bool | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Row]:
        return self._all(
            "api_lora_list",
            viewer=viewer,
            me=me,
            limit=limit,
            status=status,
            owner=owner,
            is_public=is_public,
            mine_only=mine_only,
            **_after(after),
        )

    def set_lora_public(self, lora_id: uuid.UUID, is_public: bool) -> Row | None:
        return self._one("api_lora_set_public", id=lora_id, is_public=is_public)

    def count_download(self, lora_id: uuid.UUID) -> Row | None:
        return self._one("api_lora_count_download", id=lora_id)

    # -- presets ---------------------------------------------------------------------------------

    def create_preset(self, *, parameters: dict[str, Any], **values: Any) -> Row:
        return self._row("api_preset_create", parameters=Jsonb(parameters), **values)

    def preset(self, preset_id: uuid.UUID) -> Row | None:
        return self._one("api_preset_get", id=preset_id)

    def presets(
        self,
        *,
        viewer: uuid.UUID | None,
        limit: int,
        owner: uuid.UUID | None = None,
        is_public: bool | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Row]:
        return self._all(
            "api_preset_list", viewer=viewer, limit=limit, owner=owner, is_public=is_public, **_after(after)
        )

    def update_preset(self, preset_id: uuid.UUID, changes: dict[str, Any]) -> Row | None:
        params = {
            k: changes.get(k) for k in ("name", "provider", "model_name", "style_modifiers", "is_public")
        }
        params["parameters"] = Jsonb(changes["parameters"]) if changes.get("parameters") is not None else None
        params["set_description"] = "description" in changes
        params["description"] = changes.get("description")
        return self._one("api_preset_update", id=preset_id, **params)

    def delete_preset(self, preset_id: uuid.UUID) -> bool:
        return self._one("api_preset_delete", id=preset_id) is not None

    # -- images ----------------------------------------------------------------------------------

    def image(self, image_id: uuid.UUID) -> Row | None:
        return self._one("api_image_get", id=image_id)

    def images(
        self,
        *,
        viewer: uuid.UUID | None,
        limit: int,
        job_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
        story_id: uuid.UUID | None = None,
        lora_id: uuid.UUID | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        min_quality: float | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Row]:
        return self._all(
            "api_image_list",
            viewer=viewer,
            limit=limit,
            job_id=job_id,
            scene_id=scene_id,
            story_id=story_id,
            lora_id=str(lora_id) if lora_id else None,
            created_from=created_from,
            created_to=created_to,
            min_quality=min_quality,
            **_after(after),
        )

    def ping(self) -> None:
        self._one("api_ping")


def _after(after: tuple[datetime, uuid.UUID] | None) -> dict[str, Any]:
    """A keyset position as the list queries' parameters (None: the first page)."""
    return {"after_created": after[0] if after else None, "after_id": after[1] if after else None}
