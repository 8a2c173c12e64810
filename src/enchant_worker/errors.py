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


class JobCancelled(EnchantError):
    """The job was cancelled."""


class Preempted(EnchantError):
    """The job gave its worker back to more urgent work; it returns to the queue without spending an attempt."""
