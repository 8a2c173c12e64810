"""Named data migrations, registered like job handlers: the built-in ones, those of installed plugins
(entry point group `enchant_worker.data_migrations`), and those of the modules named in
ENCHANT_DATA_MIGRATION_MODULES (each exposing a DATA_MIGRATIONS list)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from enchant_worker.db.connection import Connection
from enchant_worker.errors import ConfigurationError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "enchant_worker.data_migrations"

Checkpoint = Any  # JSON: where the next batch starts (None before the first)


@dataclass(frozen=True)
class DataMigration:
    """A data migration, run in batches by `data_migration` jobs.

    count(conn): how many units (rows, days...) the migration covers in all, done or not; for progress.
    batch(conn, checkpoint, limit): migrates up to `limit` units after `checkpoint` and returns
      (units migrated, new checkpoint). It runs inside the transaction that also stores the new checkpoint,
      so a batch commits together with its checkpoint or not at all: after a crash the next run continues
      exactly after the last committed batch, and no unit is migrated twice. 0 units means finished.
    """

    name: str
    from_version: str
    to_version: str
    count: Callable[[Connection], int]
    batch: Callable[[Connection, Checkpoint, int], tuple[int, Checkpoint]]
    description: str = ""
    batch_size: int | None = None  # default: ENCHANT_DATA_MIGRATION_BATCH_SIZE


class DataMigrationRegistry:
    def __init__(self, migrations: Iterable[DataMigration] = ()):
        self._migrations: dict[str, DataMigration] = {}
        for migration in migrations:
            self.register(migration)

    def register(self, migration: DataMigration) -> None:
        if not isinstance(migration, DataMigration):
            raise ConfigurationError(f"{migration!r} is not a DataMigration")
        self._migrations[migration.name] = migration

    def get(self, name: str) -> DataMigration:
        migration = self._migrations.get(name)
        if migration is None:
            raise ConfigurationError(
                f"unknown data migration {name!r}; known: {', '.join(self.names) or '(none)'}"
            )
        return migration

    def __contains__(self, name: str) -> bool:
        return name in self._migrations

    @property
    def names(self) -> list[str]:
        return sorted(self._migrations)

    def __iter__(self):
        return iter(self._migrations[n] for n in self.names)

    def load_module(self, name: str) -> None:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import data migrations module {name!r}: {exc}") from exc
        for migration in getattr(module, "DATA_MIGRATIONS", []):
            self.register(migration)

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                log.error("data migration plugin %s could not be loaded: %s", ep.name, exc)
                continue
            for migration in loaded if isinstance(loaded, list | tuple) else [loaded]:
                self.register(migration)


def default_data_migrations(
    modules: str | Iterable[str] | None = None, *, plugins: bool = True
) -> DataMigrationRegistry:
    """Built-in migrations, plugins, and `modules` (default: ENCHANT_DATA_MIGRATION_MODULES)."""
    from enchant_worker.config import get_settings
    from enchant_worker.data_migrations.builtin import BUILTIN

    registry = DataMigrationRegistry(BUILTIN)
    if plugins:
        registry.load_entry_points()
    if modules is None:
        modules = get_settings().data_migration_modules
    if isinstance(modules, str):
        modules = [m.strip() for m in modules.split(",") if m.strip()]
    for module in modules:
        registry.load_module(module)
    return registry
