"""Job handlers: the glue between a queued job and the code that does the work."""

from __future__ import annotations

from typing import Any

from enchant_worker.worker.registry import Handler, Registry


def builtin_handlers() -> list[Handler[Any]]:
    from enchant_worker.handlers import (
        analyze_story,
        data_migration,
        export_story,
        extract_scenes,
        generate_image,
        noop,
        train_lora,
    )

    return [
        noop.HANDLER,
        data_migration.HANDLER,
        train_lora.HANDLER,
        generate_image.HANDLER,
        export_story.HANDLER,
        extract_scenes.HANDLER,
        analyze_story.HANDLER,
    ]


def default_registry(*, plugins: bool = True, module: str | None = None) -> Registry:
    """The built-in handlers, those of installed plugins (entry points) unless `plugins` is false, and
    those of `module` (`--handlers`): the registry the CLI gives a worker (and the API, for job types)."""
    registry = Registry(builtin_handlers())
    if plugins:
        registry.load_entry_points()
    if module:
        registry.load_module(module)
    return registry
