"""Who a job is for, as the one authorization step sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

ADMIN, USER, SYSTEM = "admin", "user", "system"


@dataclass(frozen=True)
class Actor:
    """The caller: an API key's user and role, the CLI (a local operator, `system`), or the user a
    job row names when the worker re-checks it (`for_job`)."""

    user_id: uuid.UUID | None
    role: str  # admin | user | system

    @property
    def is_admin(self) -> bool:
        """Admins and the local operator may use every row; ownerless rows are theirs alone."""
        return self.role in (ADMIN, SYSTEM)

    def owns(self, owner_id: uuid.UUID | None) -> bool:
        return self.is_admin or (owner_id is not None and owner_id == self.user_id)


SYSTEM_ACTOR = Actor(None, SYSTEM)
