"""Text analyzers by name, like the image providers: `builtin` always, plugins through the entry-point
group `enchant_worker.text_providers` (an object or a class with `name` and `analyze_chapter`)."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from enchant_worker.text.analysis import TextAnalyzer
from enchant_worker.text.errors import AnalyzerUnavailable

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "enchant_worker.text_providers"
DEFAULT_ANALYZER = "builtin"
LLM_ANALYZER = "llm"  # built per text model by `llm_analyzer` (it needs the settings)


class AnalyzerRegistry:
    def __init__(self) -> None:
        self._analyzers: dict[str, TextAnalyzer] = {}

    def register(self, analyzer: TextAnalyzer) -> None:
        if not getattr(analyzer, "name", None) or not callable(getattr(analyzer, "analyze_chapter", None)):
            raise TypeError(f"{analyzer!r} is not a text analyzer (needs name and analyze_chapter)")
        self._analyzers[analyzer.name] = analyzer

    @property
    def names(self) -> list[str]:
        return sorted(self._analyzers)

    def get(self, name: str | None) -> TextAnalyzer:
        name = name or DEFAULT_ANALYZER
        if name in self._analyzers:
            return self._analyzers[name]
        if name == LLM_ANALYZER:
            raise AnalyzerUnavailable(
                "analyzer: the llm analyzer needs a text model: use text.llm.llm_analyzer"
            )
        raise AnalyzerUnavailable(
            f"analyzer: unknown text analyzer {name!r}; available: {', '.join(self.names)}"
        )

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
                self.register(loaded() if isinstance(loaded, type) else loaded)
            except Exception as exc:  # a broken plugin must not stop the worker
                log.error("text provider plugin %s could not be loaded: %s", ep.name, exc)


_default: AnalyzerRegistry | None = None


def default_analyzers(*, plugins: bool = True) -> AnalyzerRegistry:
    """The process's registry (built once): builtin, then plugins."""
    global _default
    if _default is None:
        from enchant_worker.text.builtin import BuiltinAnalyzer

        registry = AnalyzerRegistry()
        registry.register(BuiltinAnalyzer())
        if plugins:
            registry.load_entry_points()
        _default = registry
    return _default


def known_analyzer_names() -> list[str]:
    """Names a job may ask for without loading any plugin code (validation at enqueue)."""
    names = {DEFAULT_ANALYZER, LLM_ANALYZER}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.add(ep.name)
    return sorted(names)
