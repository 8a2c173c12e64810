"""Logging for every command: one line per record, as text or as JSON (`ENCHANT_LOG_FORMAT=json`, one
object per line for log shippers), with the schedulers' per-tick chatter kept at DEBUG.

The worker logs one INFO line when a job starts and one when it ends (id, type, user, attempt, duration,
outcome); the API's access log is off unless `ENCHANT_ACCESS_LOG=true`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# APScheduler says "Running job…" and "…executed successfully" at INFO for every tick of every task.
CHATTY = ("apscheduler",)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str | int = "INFO", fmt: str | None = None) -> None:
    """Sets up the root logger on stderr. `fmt`: "text" or "json" (default: ENCHANT_LOG_FORMAT, else text)."""
    fmt = (fmt or os.environ.get("ENCHANT_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)


def access_log_enabled() -> bool:
    return os.environ.get("ENCHANT_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on")
