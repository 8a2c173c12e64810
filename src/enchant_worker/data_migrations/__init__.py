"""Named Python data migrations (the specification's data_migrations), run as `data_migration` jobs in
resumable batches."""

from enchant_worker.data_migrations.registry import (
    DataMigration,
    DataMigrationRegistry,
    default_data_migrations,
)
from enchant_worker.data_migrations.runner import enqueue_data_migration, run_data_migration

__all__ = [
    "DataMigration",
    "DataMigrationRegistry",
    "default_data_migrations",
    "enqueue_data_migration",
    "run_data_migration",
]
