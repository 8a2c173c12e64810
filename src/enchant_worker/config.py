"""One typed settings object, read from ENCHANT_* environment variables, that refuses unsafe values."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_METRICS_TOKEN_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCHANT_", extra="ignore")

    # Where things live. Unset database_url means: the embedded Postgres under home/pgdata.
    database_url: str | None = None
    # The Postgres server itself when database_url is a pooler (PgBouncer in transaction mode): LISTEN,
    # migrations and the scheduler's leader lock need a session. Unset behind a pooler: workers poll, the
    # scheduler elects through a lease row, migrations are refused (README, Running a fleet).
    direct_database_url: str | None = None
    home: Path = Path(".enchant")
    storage_dir: Path | None = None  # default: home/storage
    # file:///abs/path or s3://bucket/prefix (README "Storage backends"); unset: the storage_dir folder.
    storage_url: str | None = None
    # With s3://, the API answers downloads with a 307 to a presigned URL of this life (seconds) instead of
    # streaming them; 0 streams (the object store then need not be reachable by clients).
    storage_presigned_s: int = Field(0, ge=0, le=7 * 86400)
    models_dir: Path = REPO_ROOT / "models"
    configs_dir: Path = REPO_ROOT / "configs"
    migrations_dir: Path = REPO_ROOT / "migrations"
    redis_url: str | None = None

    # Tenancy: subscription tiers (caps, quotas) and the folders admins may train from.
    tiers_file: Path | None = None  # default: configs_dir/tiers.toml
    training_dirs: list[Path] = []
    providers_file: Path | None = (
        None  # default: configs_dir/providers.toml (remote providers, roles)  # admin keys and the CLI may name training-image folders under these
    )

    # Control API.
    upload_max_file_bytes: int = Field(20 * 2**20, ge=1024)
    upload_max_request_bytes: int = Field(200 * 2**20, ge=1024)
    request_max_json_bytes: int = Field(2**20, ge=1024)  # every request body except uploads (413 above)
    # Origin put in front of file URLs (a CDN pulling from this API), e.g. https://cdn.example.org
    public_base_url: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    signed_url_max_s: int = Field(7 * 86400, ge=60)  # longest life of a signed file URL
    # /metrics also answers `Authorization: Bearer <this token>`, so Prometheus needs no admin key.
    metrics_token: SecretStr | None = None
    ingest_max_bytes: int = Field(32 * 2**20, ge=1024)  # a book file (text, Markdown, EPUB) to ingest
    # The client address of a request (analytics events) is the TCP peer, unless the peer is one of these
    # proxies (addresses or CIDR networks, as JSON: '["10.0.0.0/8", "127.0.0.1"]'); then it is read from
    # client_ip_header (X-Forwarded-For, or a one-address header such as X-Real-IP).
    trusted_proxies: list[IPvAnyNetwork] = []
    client_ip_header: str = Field("X-Forwarded-For", pattern=r"^[A-Za-z0-9-]{1,64}$")

    # Logging (read by `logs.configure` before the settings load; declared here to be refused early).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False  # the API's HTTP access log

    # Queue timing.
    lease_seconds: float = Field(60.0, ge=1.0, le=3600.0)
    heartbeat_seconds: float = Field(5.0, gt=0.0)
    poll_interval_s: float = Field(2.0, gt=0.0, le=60.0)  # the longest wait of an idle worker between polls
    poll_min_interval_s: float = Field(0.05, gt=0.0, le=60.0)  # the poll while work flows; doubles when idle
    reap_interval_s: float = Field(10.0, gt=0.0)
    retry_base_s: float = Field(2.0, ge=0.0)
    retry_max_s: float = Field(600.0, ge=0.0)
    shutdown_grace_s: float = Field(30.0, ge=0.0)
    db_retry_max_s: float = Field(30.0, gt=0.0)
    # Fair share inside a priority level (README "Fair share"): off leases strictly by priority, then age.
    queue_fair_share: bool = True
    # A user with nothing running whose oldest job waited this long is served next (starvation guard).
    queue_fair_share_max_wait_s: float = Field(60.0, ge=0.0, le=86400.0)
    # Warm affinity (README "Affinity"): how long a job may be passed over for jobs whose model and LoRAs a
    # worker has loaded; older, it is taken in queue order. 0 turns the preference off.
    affinity_max_wait_s: float = Field(30.0, ge=0.0, le=86400.0)

    # Generation and training.
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    compile: bool = False
    # Cross-job batching (README "Batching"): how many compatible generate_image jobs one GPU call takes.
    # Unset: 4 on a CUDA device, 1 (off) on the CPU, where a batch saves little; out of memory halves it.
    generation_batch_size: int | None = Field(None, ge=1, le=64)
    models_config: Path = REPO_ROOT / "configs" / "models.toml"
    lora_dirs: list[Path] = []  # LoRA files load only from models_dir, the storage folder and these
    lora_cache_max_count: int = Field(8, ge=1, le=256)
    lora_cache_max_bytes: int = Field(2 * 1024**3, ge=1024**2)
    # Resident base models (an LRU): unset, CUDA keeps what fits its free memory and the CPU one model.
    model_cache_max_models: int | None = Field(None, ge=1, le=64)
    model_cache_max_bytes: int | None = Field(None, ge=2**20)
    preempt_after_s: float = Field(120.0, ge=0.0)
    min_training_images: int = Field(5, ge=1)
    max_training_images: int = Field(50, ge=1, le=10_000)
    max_training_image_pixels: int = Field(40_000_000, ge=1)  # larger is treated as a decompression bomb
    lora_checkpoint_every_steps: int = Field(100, ge=1)

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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"ENCHANT_HEARTBEAT_SECONDS ({self.heartbeat_seconds}) must be below "
                f"ENCHANT_LEASE_SECONDS ({self.lease_seconds}), or leases expire between heartbeats"
            )
        if self.max_training_images < self.min_training_images:
            raise ValueError("ENCHANT_MAX_TRAINING_IMAGES must be at least ENCHANT_MIN_TRAINING_IMAGES")
        if self.poll_min_interval_s > self.poll_interval_s:
            raise ValueError("ENCHANT_POLL_MIN_INTERVAL_S must be at most ENCHANT_POLL_INTERVAL_S")
        if self.retry_max_s < self.retry_base_s:
            raise ValueError("ENCHANT_RETRY_MAX_S must be at least ENCHANT_RETRY_BASE_S")
        if self.storage_url:
            from enchant_worker.storage import parse_storage_url

            parse_storage_url(self.storage_url)  # its ValueError names ENCHANT_STORAGE_URL and the fix
        if (
            self.metrics_token is not None
            and len(self.metrics_token.get_secret_value()) < MIN_METRICS_TOKEN_CHARS
        ):
            raise ValueError(
                f"ENCHANT_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_CHARS} characters "
                "(make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return self

    @property
    def storage(self) -> Path:
        """The local storage folder: the file:// URL's, else storage_dir (with s3://, where files are made)."""
        if self.storage_url and self.storage_url.startswith("file:"):
            from enchant_worker.storage import parse_storage_url

            return Path(parse_storage_url(self.storage_url)[1])
        return self.storage_dir or self.home / "storage"

    @property
    def storage_cache(self) -> Path:
        """Local copies of objects from S3 storage that a library needs as files (LoRAs, export pictures)."""
        return self.home / "cache" / "storage"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def tiers_path(self) -> Path:
        return self.tiers_file or self.configs_dir / "tiers.toml"

    @property
    def providers_path(self) -> Path:
        return self.providers_file or self.configs_dir / "providers.toml"

    @property
    def schedule_path(self) -> Path:
        return self.schedule_file or self.configs_dir / "schedule.toml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
