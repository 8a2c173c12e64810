"""Another migrated database on the test server: the second instance a story moves to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg


def another_database(admin_url: str, template: str) -> Iterator[str]:
    name = f"enchant_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
