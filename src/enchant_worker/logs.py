"""Logging for every command: one line per record, as text or as JSON (`ENCHANT_LOG_FORMAT=json`, one
object per line for log shippers), with the schedulers' per-tick chatter kept at DEBUG.

The worker logs one INFO line when a job starts and one when it ends (id, type, user, attempt, duration,
outcome); the API's access log is off unless `ENCHANT_ACCESS_LOG=true`. Known notices of the ML libraries
(diffusers, transformers, peft) are rewritten into one plain project message each (`KNOWN_NOTICES`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# APScheduler says "Running job…" and "…executed successfully" at INFO for every tick of every task.
CHATTY = ("apscheduler",)
# Libraries that install their own stderr handler and stop propagation on import; `adopt_library_logs`
# routes them through ours (one format, and the rewrites below).
ML_LIBRARIES = ("diffusers", "transformers")

# (pattern over the library's message, level, the project's message with the pattern's groups)
KNOWN_NOTICES: tuple[tuple[re.Pattern[str], int, str], ...] = (
    (
        re.compile(r"No LoRA keys associated to (\w+) found with the prefix='(\w+)'", re.S),
        logging.INFO,
        "LoRA: no weights for the {1} ({0}); it styles the UNet only (usual for LoRAs trained without "
        "the text encoder)",
    ),
    (
        re.compile(r"Already found a `peft_config` attribute in the model", re.S),
        logging.DEBUG,
        "LoRA: another adapter joins the resident model (LoRAs stay loaded side by side)",
    ),
    (
        re.compile(
            r"The following part of your input was truncated because (\w+) can only handle sequences up "
            r"to (\d+) tokens: \[?(.*?)\]?$",
            re.S,
        ),
        logging.WARNING,
        "prompt: longer than the {0} text encoder's {1} tokens; these words were left out: {2}",
    ),
)


class KnownNotices(logging.Filter):
    """Rewrites a known third-party notice into the project's message (and level) for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("enchant_worker"):
            return True
        text = record.getMessage()
        for pattern, level, message in KNOWN_NOTICES:
            match = pattern.search(text)
            if match:
                record.msg, record.args = message.format(*(g.strip() for g in match.groups())), ()
                record.levelno, record.levelname = level, logging.getLevelName(level)
                return record.levelno >= logging.getLogger().getEffectiveLevel()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str | int = "INFO", fmt: str | None = None) -> None:
    """Sets up the root logger on stderr. `fmt`: "text" or "json" (default: ENCHANT_LOG_FORMAT, else text)."""
    fmt = (fmt or os.environ.get("ENCHANT_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(KnownNotices())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)  # peft's notices are warnings.warn: through the handler and its rewrites


def adopt_library_logs() -> None:
    """Route the ML libraries' loggers through the root handler (call after importing them: they set up
    their own handler on import). Does nothing where `configure` was not called (library use, tests)."""
    root = logging.getLogger()
    if not any(isinstance(f, KnownNotices) for h in root.handlers for f in h.filters):
        return
    for name in ML_LIBRARIES:
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True


def access_log_enabled() -> bool:
    return os.environ.get("ENCHANT_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on")
