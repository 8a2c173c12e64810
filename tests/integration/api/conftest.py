"""An app on this test's own database, a client, and keys of each role."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.deps import Limits
from enchant_worker.api.store import Store
from enchant_worker.handlers import default_registry


@dataclass(frozen=True)
class Caller:
    key: str
    user_id: uuid.UUID | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def limits() -> Limits:
    return Limits(upload_file_bytes=200_000, upload_total_bytes=2_000_000)


@pytest.fixture
def app(settings, db_url, limits):
    return create_app(settings, database_url=db_url, job_types=default_registry(plugins=False), limits=limits)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def store(conn) -> Store:
    return Store(conn)


@pytest.fixture
def make_user(store) -> Callable[[str], Caller]:
    def make(email: str | None = None) -> Caller:
        user_id = store.ensure_user(email or f"{uuid.uuid4().hex[:8]}@example.org")
        key, _ = create_key(store, name=f"key of {user_id}", role="user", user_id=user_id)
        return Caller(key, user_id)

    return make


@pytest.fixture
def admin(store) -> Caller:
    key, _ = create_key(store, name="admin", role="admin", user_id=None)
    return Caller(key, None)


@pytest.fixture
def alice(make_user) -> Caller:
    return make_user("alice@example.org")


@pytest.fixture
def bob(make_user) -> Caller:
    return make_user("bob@example.org")


@pytest.fixture
def png() -> Callable[..., bytes]:
    """Makes PNG bytes: png(size=(32, 32))."""
    return png_bytes


def png_bytes(size: tuple[int, int] = (32, 32), color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()
