"""Settings of the scheduler, maintenance, data migrations and caches (ENCHANT_* variables).

Kept apart from config.Settings until they are merged into it; read the same way, from the environment,
and refused at start-up when unsafe.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperationsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCHANT_", extra="ignore")

    # Scheduler. Unset schedule_file means configs_dir/schedule.toml (defaults apply when it is missing).
    schedule_file: Path | None = None
    leader_check_s: float = Field(1.0, gt=0.0, le=30.0)  # followers try the lock / the leader checks it
    schedule_timezone: str = "UTC"  # cron expressions are read in this zone
    recurring_grace_s: float = Field(60.0, ge=0.0)  # a new leader still enqueues a tick missed this recently

    # Maintenance.
    partitions_ahead: int = Field(3, ge=0, le=120)  # images partitions: this month and the next N
    job_retention_days: float = Field(30.0, gt=0.0)  # finished jobs older than this move to the history
    archive_batch_size: int = Field(5000, ge=1)
    maintenance_runs_keep_days: float = Field(7.0, gt=0.0)
    metrics_days_back: int = Field(1, ge=0, le=366)  # record_metrics covers today and this many days before

    # Data migrations.
    data_migration_batch_size: int = Field(500, ge=1, le=100_000)
    data_migration_modules: str = ""  # comma-separated modules whose DATA_MIGRATIONS list is registered

    # Caches (seconds).
    cache_user_preferences_ttl_s: float = Field(300.0, gt=0.0)
    cache_story_metadata_ttl_s: float = Field(3600.0, gt=0.0)
    cache_community_content_ttl_s: float = Field(86400.0, gt=0.0)
    cache_retry_redis_s: float = Field(30.0, gt=0.0)  # after a Redis failure, the in-process cache this long

    def schedule_path(self, configs_dir: Path) -> Path:
        return self.schedule_file or configs_dir / "schedule.toml"
