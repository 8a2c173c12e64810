"""Job handlers: the glue between a queued job and the code that does the work."""

from __future__ import annotations

from enchant_worker.worker.registry import Handler


def builtin_handlers() -> list[Handler]:
    from enchant_worker.handlers import (
        analyze_story,
        data_migration,
        export_story,
        extract_scenes,
        generate_image,
        noop,
        train_lora,
    )

    return [noop.HANDLER, data_migration.HANDLER, train_lora.HANDLER, generate_image.HANDLER,
            export_story.HANDLER, extract_scenes.HANDLER, analyze_story.HANDLER]
