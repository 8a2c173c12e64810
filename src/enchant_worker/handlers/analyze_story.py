"""`analyze_story`: score a story's scenes, its pacing and characters, suggest, and apply the seed's
enhancement rules; store it all (`story_analysis_store`).

1. Read the story: extracted scenes with their characters and emotions (chapters never extracted are
   split in memory by builtin; their scenes get no stored score).
2. Unchanged since the last analysis by the same analyzer (same content hash) and not `force`: reuse it.
3. Analyse (`text.story_analysis`): builtin, or with the llm scoring each scene and proposing edits.
4. Store scene scores, the story's analysis and its metrics in one transaction.
"""

from __future__ import annotations

from typing import Any

from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.analyze_story import AnalyzeStorySpec
from enchant_worker.text.errors import AnalyzerUnavailable
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.registry import Handler

JOB_TYPE = "analyze_story"


def run(ctx: JobContext[AnalyzeStorySpec]) -> dict[str, Any]:
    from enchant_worker import story_analysis_store as store
    from enchant_worker.text.story_analysis import analyze_story

    spec = ctx.spec
    scorer = fixer = None
    model_name = None
    if spec.analyzer == "llm":
        scorer, fixer, model_name = _llm(ctx, spec)
    with ctx.connect() as conn:
        # 1. The story
        try:
            story, story_input = store.load_story(conn, spec.story_id)
        except store.StoryNotFound as exc:
            raise InvalidJob(f"story_id: {exc}") from None
        content_hash = story_input.content_hash(store.analyzer_key(spec.analyzer, model_name))
        # 2. Unchanged: reuse
        previous = store.stored(conn, "story", spec.story_id, store.STORY_KEY)
        if previous and previous.get("content_hash") == content_hash and not spec.force:
            ctx.log.info(
                "story %s unchanged since its analysis of %s: reused", spec.story_id, previous["computed_at"]
            )
            return _summary(previous, reused=True)
        ctx.progress(10, step="analysing", analyzer=spec.analyzer, scenes=len(story_input.scenes))
        ctx.raise_if_cancelled()
        # 3. Analyse
        analysis = analyze_story(story_input, analyzer=spec.analyzer, scorer=scorer, auto_fixer=fixer)
        ctx.progress(80, step="storing")
        ctx.raise_if_cancelled()
        # 4. Store
        store.save(conn, spec.story_id, analysis, content_hash, job_id=ctx.job.id, text_model=model_name)
        saved = store.stored(conn, "story", spec.story_id, store.STORY_KEY)
    assert saved is not None  # stored just above, in this transaction
    return _summary(saved, reused=False)


def _llm(ctx: JobContext, spec: AnalyzeStorySpec):
    from enchant_worker.text.llm import llm_analyzer
    from enchant_worker.text.quality_llm import LlmAutoFixer, LlmSceneScorer, model_complete

    try:
        analyzer = llm_analyzer(ctx.settings, spec.text_model)
        complete = model_complete(analyzer)
    except AnalyzerUnavailable as exc:
        raise InvalidJob(str(exc)) from None
    name = analyzer.spec.name
    return LlmSceneScorer(complete, name), LlmAutoFixer(complete, name), name


def _summary(document: dict[str, Any], *, reused: bool) -> dict[str, Any]:
    insights = document["insights"]
    return {
        "reused": reused,
        "content_hash": document["content_hash"],
        "analyzer": document["analyzer"],
        "computed_at": document["computed_at"],
        "scores": insights["scores"],
        "counts": insights["counts"],
        "enhancement_rules": [s["type"] for s in document["enhancement"]["suggestions"]],
        "auto_fixes": len(document["enhancement"]["auto_fixes"]),
        "notes": document["notes"],
    }


HANDLER = Handler(
    JOB_TYPE,
    run,
    validate=lambda m: parse(AnalyzeStorySpec, m),
    timeout_s=1800.0,
    description="score a story's scenes, pacing and characters; suggestions and enhancement rules",
)
