"""`extract_scenes`: analyse one chapter with a text analyzer and store what it found.

1. Read the chapter and the story's known characters (so that names merge across chapters).
2. Analyse the text (`builtin` by default; plugins through `enchant_worker.text_providers`).
3. Write scenes, characters, locations, emotions and transitions in one transaction (`books.apply_extraction`:
   idempotent; scenes with images or edits are never deleted).
4. With `illustrate`, enqueue a generate_image job per new scene (idempotency keys: a retried job adds none twice).
"""

from __future__ import annotations

from typing import Any

from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.extract_scenes import ExtractScenesSpec
from enchant_worker.sql import q
from enchant_worker.text.analysis import ProcessingOptions, TextAnalyzer
from enchant_worker.text.errors import AnalyzerUnavailable
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

JOB_TYPE = "extract_scenes"
ILLUSTRATE_JOB_TYPE = "generate_image"


def run(ctx: JobContext[ExtractScenesSpec]) -> dict[str, Any]:
    from enchant_worker import books
    from enchant_worker.text.registry import LLM_ANALYZER, default_analyzers

    spec = ctx.spec
    analyzer: TextAnalyzer
    try:
        if spec.analyzer == LLM_ANALYZER:
            from enchant_worker.text.llm import llm_analyzer

            analyzer = llm_analyzer(ctx.settings, spec.text_model)
        else:
            analyzer = default_analyzers().get(spec.analyzer)
    except AnalyzerUnavailable as exc:
        raise InvalidJob(str(exc)) from None
    with ctx.connect() as conn:
        # 1. The chapter and what the story knows
        chapter = conn.execute(q("book_chapter_get"), {"id": spec.chapter_id}).fetchone()
        if chapter is None:
            raise InvalidJob(f"chapter_id: no chapter has id {spec.chapter_id}")
        known = books.known_characters(conn, chapter["story_id"])
        fields = books.custom_fields_to_fill(conn, chapter["story_id"])
        ctx.progress(10, step="analysing", analyzer=analyzer.name)
        ctx.raise_if_cancelled()
        # 2. Analyse
        analysis = analyzer.analyze_chapter(
            chapter["content"] or "", ProcessingOptions(known_characters=known, custom_fields=fields)
        )
        ctx.progress(60, step="storing", scenes=len(analysis.scenes))
        ctx.raise_if_cancelled()
        # 3. Store
        try:
            summary = books.apply_extraction(
                conn, spec.chapter_id, analysis, job_id=ctx.job.id, content_hash=chapter["content_hash"]
            )
        except LookupError as exc:
            raise InvalidJob(f"chapter_id: {exc}") from None
        # 4. Illustrate the new scenes
        jobs: list[str] = []
        if spec.illustrate and summary["new_scene_ids"]:
            jobs, summary["illustration_skipped"] = _illustrate(
                conn, ctx, spec, chapter, summary["new_scene_ids"]
            )
    summary["illustration_jobs"] = jobs
    return summary


def _illustrate(
    conn, ctx: JobContext, spec: ExtractScenesSpec, chapter, scene_ids
) -> tuple[list[str], str | None]:
    """A generate_image job per new scene, through intake as the job's user (the story's owner for a job
    with no user): their rights, tier and quotas. A quota used up skips the rest, said in the result."""
    from enchant_worker.errors import QuotaExceeded
    from enchant_worker.intake import SYSTEM_ACTOR, JobRequest, submit
    from enchant_worker.intake.submit import actor_for_user

    owner = conn.execute(q("extraction_new_scene_owner"), {"story_id": chapter["story_id"]}).fetchone()
    user_id = ctx.job.user_id or (owner["user_id"] if owner else None)
    actor = actor_for_user(conn, user_id) if user_id else SYSTEM_ACTOR
    extra = {"steps": spec.steps} if spec.steps is not None else {}
    jobs: list[str] = []
    for scene_id in scene_ids:
        request = JobRequest(
            ILLUSTRATE_JOB_TYPE,
            {"scene_id": str(scene_id), **extra},
            priority=ctx.job.priority,
            idempotency_key=f"{JOB_TYPE}:{ctx.job.id}:{scene_id}",
        )
        try:
            jobs.append(str(submit(conn, actor, request, ctx.settings)))
        except QuotaExceeded as exc:
            return jobs, str(exc)
    return jobs, None


HANDLER = Handler(
    JOB_TYPE,
    run,
    validate=lambda m: parse(ExtractScenesSpec, m),
    timeout_s=600.0,
    description="split a chapter into scenes, characters, locations and emotions",
)
