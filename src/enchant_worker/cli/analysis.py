"""`analyze`, `insights`: a story's quality scores, pacing and suggestions on the command line."""

from __future__ import annotations

import argparse
import sys
import time

from enchant_worker.cli.common import print_json, uuid_arg
from enchant_worker.errors import InvalidJob

POLL_INTERVAL_S = 0.2
BAR_WIDTH = 20
SPARK = "▁▂▃▄▅▆▇█"
FIELDS = (
    "overall",
    "narrative_coherence",
    "visual_potential",
    "character_development",
    "pacing",
    "emotional_impact",
)


def register(commands) -> None:
    a = commands.add_parser(
        "analyze",
        help="queue a story's analysis: quality scores, pacing, suggestions",
        description="Queue an analyze_story job for the story (as its owner). builtin measures each scene's "
        "coherence, visual potential, character development, pacing and emotional impact; llm asks a text model "
        "for scores with a reason each and proposes edits. Unchanged text reuses the last analysis (--force: "
        "recompute). With --wait, print the insights when done.",
    )
    a.add_argument("story", type=uuid_arg, metavar="STORY_ID")
    a.add_argument("--analyzer", choices=["builtin", "llm"], default="builtin")
    a.add_argument("--text-model", help='the llm analyzer\'s model (configs/models.toml, kind = "text")')
    a.add_argument("--force", action="store_true", help="recompute even when the text did not change")
    a.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for the job and print the insights (default: in a terminal)",
    )
    a.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds")
    a.add_argument("--json", action="store_true", help="with --wait: print the stored analysis as JSON")
    a.set_defaults(func=cmd_analyze)

    i = commands.add_parser(
        "insights",
        help="print a story's latest analysis",
        description="Print the story's scores (as bars), its scenes' scores, the pacing "
        "curve, the enhancement rules that fired and the suggestions.",
    )
    i.add_argument("story", type=uuid_arg, metavar="STORY_ID")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_insights)


def cmd_analyze(args) -> int:
    from enchant_worker.cli.common import open_database
    from enchant_worker.intake import SYSTEM_ACTOR, JobRequest, submit
    from enchant_worker.intake.submit import actor_for_user
    from enchant_worker.queue import JobQueue
    from enchant_worker.sql import q

    settings, db = open_database()
    queue = JobQueue(db.open())
    story = queue.conn.execute(q("analysis_story"), {"id": args.story}).fetchone()
    if story is None:
        raise InvalidJob(f"story_id: no story has id {args.story}")
    metadata = {"story_id": str(args.story), "analyzer": args.analyzer, "force": bool(args.force)}
    if args.text_model:
        metadata["text_model"] = args.text_model
    actor = actor_for_user(queue.conn, story["user_id"]) if story["user_id"] else SYSTEM_ACTOR
    job_id = submit(queue.conn, actor, JobRequest("analyze_story", metadata), settings)
    if not (sys.stdout.isatty() if args.wait is None else args.wait):
        print(job_id)
        print(
            "queued an analyze_story job; a worker runs it (`enchant-worker worker`), then "
            f"`enchant-worker insights {args.story}`",
            file=sys.stderr,
        )
        return 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    while (job := queue.get(job_id)).status not in ("completed", "failed", "cancelled"):
        if deadline is not None and time.monotonic() > deadline:
            print(
                f"error: analyze_story job {job_id} still {job.status} after {args.timeout} s",
                file=sys.stderr,
            )
            return 1
        time.sleep(POLL_INTERVAL_S)
    if job.status != "completed":
        print(f"error: analyze_story job {job_id} {job.status}: {job.error_message or ''}", file=sys.stderr)
        return 1
    result = job.result or {}
    if result.get("reused"):
        print(f"unchanged since the analysis of {result['computed_at']}: reused", file=sys.stderr)
    return _show(db, args.story, args.json)


def cmd_insights(args) -> int:
    from enchant_worker.cli.common import open_database

    _, db = open_database()
    return _show(db, args.story, args.json)


def _show(db, story_id, as_json: bool) -> int:
    from enchant_worker import story_analysis_store as store

    with db.connection() as conn:
        document = store.stored(conn, "story", story_id, store.STORY_KEY)
        if document is None:
            raise InvalidJob(
                f"story {story_id} has not been analysed yet: run `enchant-worker analyze {story_id}`"
            )
        stale = store.is_stale(conn, story_id, document)
    if as_json:
        print_json({**document, "stale": stale})
        return 0
    for line in render(document, stale):
        print(line)
    return 0


def bar(value: float) -> str:
    filled = round(value * BAR_WIDTH)
    return "█" * filled + "·" * (BAR_WIDTH - filled)


def spark(values: list[float]) -> str:
    return "".join(SPARK[min(len(SPARK) - 1, int(v * len(SPARK)))] for v in values)


def render(document: dict, stale: bool) -> list[str]:
    insights, pacing, enhancement = document["insights"], document["pacing"], document["enhancement"]
    counts = insights["counts"]
    source = document["analyzer"] + (f" ({document['text_model']})" if document.get("text_model") else "")
    lines = [
        f"{insights['title']}: {counts['chapters']} chapter(s), {counts['scenes']} scene(s), {counts['words']} "
        f"words, {counts['characters']} character(s); analysed {document['computed_at']} by {source}"
    ]
    if stale:
        lines.append("  STALE: the story changed since; run `enchant-worker analyze` again")
    for field in FIELDS:
        value = insights["scores"][field]
        lines.append(f"  {field:22} {bar(value)} {value:.2f}")
    tentative = [s for s in document["scenes"] if not s["certain"]]
    lines.append("scenes:")
    for scene in document["scenes"]:
        mark = ""
        if not scene["certain"]:
            mark = f"  ~ llm, confidence {scene['confidence']}" + (
                " (tentative)" if (scene["confidence"] or 0) < 0.5 else ""
            )
        lines.append(
            f"  ch{scene['chapter']}.{scene['scene']} {bar(scene['overall'])} {scene['overall']:.2f}{mark}"
        )
    if tentative:
        lines.append(f"  {len(tentative)} scene score(s) come from the llm: estimates, not measurements")
    curve = [p["tension"] for p in pacing["tension_curve"]]
    if curve:
        lines.append(
            f"tension: {spark(curve)}  (range {pacing['tension_range']:.2f}"
            + (", flat" if pacing["flat_tension"] else "")
            + ")"
        )
    lines.append(
        "chapters: " + ", ".join(f"{c['chapter']}: {c['words']} words" for c in pacing["chapter_words"])
    )
    lines.append(f"enhancement (overall {enhancement['overall_score']:.2f}):")
    for s in enhancement["suggestions"]:
        where = s.get("specific_scenes") or s.get("specific_chapters") or []
        targets = ", ".join(f"ch{w['chapter']}" + (f".{w['scene']}" if "scene" in w else "") for w in where)
        lines.append(f"  [{s['priority']}] {s['type']}: {s['suggestion']} ({targets})")
    if not enhancement["suggestions"]:
        lines.append("  no rule fired")
    for fix in enhancement["auto_fixes"]:
        lines.append(
            f"  proposed edit ch{fix['chapter']}.{fix['scene']} (confidence {fix['confidence']}, not "
            f"certain): {fix['text']}"
        )
    lines.append(f"  {enhancement['auto_fixes_note']}")
    found = document["suggestions"]
    lines.append("suggestions:")
    for s in found["scenes"]:
        lines.append(
            f"  ch{s['chapter']}.{s['scene']} {s['type']} ({s['confidence']:.2f}): {s['description']}. "
            f"{s['suggested_content']}"
        )
    for s in found["characters"]:
        lines.append(f"  {s['character']} {s['type']} ({s['confidence']:.2f}): {s['description']}")
    for s in found["plot"]:
        lines.append(f"  plot {s['type']} ({s['confidence']:.2f}): {s['description']}")
    for note in document["notes"]:
        lines.append(f"note: {note}")
    return lines
