"""Errors of the text layer: each says what was wrong with the input and what to do."""

from __future__ import annotations

from enchant_worker.errors import EnchantError


class UnreadableBook(EnchantError):
    """The file cannot be read as a book; give plain text (.txt), Markdown (.md) or an EPUB."""


class BookTooLarge(UnreadableBook):
    """The file is larger than the ingest limit (ENCHANT_INGEST_MAX_BYTES)."""


class AnalyzerUnavailable(EnchantError):
    """The text analyzer is not available; `builtin` always is."""
