"""One hierarchy of errors. The docstring is the default message; messages tell a person what to do."""

from __future__ import annotations


class EnchantError(Exception):
    """Enchant Worker failed."""

    def __init__(self, message: str | None = None):
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(EnchantError):
    """The configuration is invalid."""


class DatabaseUnavailable(EnchantError):
    """The database cannot be reached; check ENCHANT_DATABASE_URL or run `enchant-worker db start`."""


class MigrationError(EnchantError):
    """The database schema cannot be migrated."""


class JobNotFound(EnchantError):
    """No job has that id."""


class InvalidJob(EnchantError):
    """The job's input is invalid. Raised by handlers; the job fails at once, without retries."""


class ModelNotFound(InvalidJob):
    """No base model has that name; see configs/models.toml."""


class JobCancelled(EnchantError):
    """The job was cancelled."""


class Preempted(EnchantError):
    """The job gave its worker back to more urgent work; it returns to the queue without spending an attempt."""


class AccessDenied(InvalidJob):
    """This user may not use what the job names. The message starts with the field. (A job that reaches
    a worker this way fails at once, like any invalid input.)"""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class JobTypeNotAllowed(AccessDenied):
    """This caller may not enqueue jobs of this type."""


class IdempotencyConflict(EnchantError):
    """The idempotency key was used before for a different job."""

    def __init__(self, key: str, job_id: object):
        super().__init__(
            f"idempotency_key: {key!r} was used for job {job_id}, which has another job type or "
            "metadata; use a new key for a new job"
        )
        self.job_id = job_id


class QuotaExceeded(EnchantError):
    """A quota of the caller's subscription tier is used up."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s
