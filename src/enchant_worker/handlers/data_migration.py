"""`data_migration`: runs the named data migration (metadata.name) in batches from its checkpoint."""

from __future__ import annotations

from typing import Any

from enchant_worker.data_migrations import DataMigration, default_data_migrations, run_data_migration
from enchant_worker.errors import ConfigurationError, InvalidJob
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler


def validate(metadata: dict[str, Any]) -> DataMigration:
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidJob(
            "name: the data migration to run is required (see `enchant-worker data-migrations list`)"
        )
    try:
        return default_data_migrations().get(name)
    except ConfigurationError as exc:
        raise InvalidJob(f"name: {exc}") from None


def run(ctx: JobContext[DataMigration]) -> dict[str, Any]:
    with ctx.connect() as conn:
        return run_data_migration(
            conn,
            ctx.spec,
            batch_size=ctx.settings.data_migration_batch_size,
            progress=ctx.progress,
            cancelled=ctx.is_cancelled,
        )


HANDLER = Handler(
    "data_migration", run, validate=validate, description="run a named data migration in batches"
)
