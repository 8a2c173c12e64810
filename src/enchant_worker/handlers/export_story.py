"""`export_story`: writes a story as pdf, epub, html, json or video into storage (`export.run`).

Progress is reported per chapter; cancellation is checked at every chapter and removes the partial file.
The result names the stored file (storage-relative, content-addressed), its download name and notes on
what could not be included (missing images, removed CSS)."""

from __future__ import annotations

from typing import Any

from enchant_worker.errors import InvalidJob, JobCancelled
from enchant_worker.export.run import ExportOptions, export_story
from enchant_worker.export.story_data import StoryNotFound
from enchant_worker.jobspecs.base import parse
from enchant_worker.jobspecs.export_story import ExportStorySpec
from enchant_worker.storage import remote, working_folder
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler


def run(ctx: JobContext[ExportStorySpec]) -> dict[str, Any]:
    spec = ctx.spec
    options = ExportOptions.from_spec(spec)
    with ctx.connect() as conn:
        try:
            result = export_story(
                conn,
                spec.story_id,
                options,
                working_folder(ctx.settings),
                storage=remote(ctx.settings),
                progress=lambda pct, info: ctx.progress(pct, **info),
                check=ctx.raise_if_cancelled,
            )
        except StoryNotFound as exc:
            raise InvalidJob(f"story_id: {exc}") from None
        except JobCancelled:
            ctx.log.info("export of story %s cancelled; partial file removed", spec.story_id)
            raise
    return result.as_dict()


HANDLER = Handler(
    "export_story",
    run,
    validate=lambda m: parse(ExportStorySpec, m),
    timeout_s=3600,
    description="export a story as pdf, epub, html, json or video",
)
