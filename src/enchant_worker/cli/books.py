"""`ingest`, `extract`, `scenes`: from a book file to illustrated scenes on the command line."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from enchant_worker.cli.common import print_json, uuid_arg
from enchant_worker.db.connection import one
from enchant_worker.errors import InvalidJob
from enchant_worker.storage import where

POLL_INTERVAL_S = 0.2


def register(commands) -> None:
    p = commands.add_parser(
        "ingest",
        help="add a book (text, Markdown, EPUB) as a story with its chapters",
        description="Read a plain text, Markdown or EPUB file, split it into chapters and store them as a new "
        "story (or into --story). Ingesting the same file again changes nothing. With --extract, queue an "
        "extract_scenes job per chapter; with --illustrate, also a generate_image job per new scene.",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--story", type=uuid_arg, metavar="ID", help="add the chapters to this story")
    target.add_argument("--title", help="the new story's title (default: the book's)")
    p.add_argument("--format", choices=["text", "markdown", "epub"], help="default: detected")
    p.add_argument("--user", metavar="EMAIL", help="the story's owner (created if new; default: none)")
    p.add_argument("--extract", action="store_true", help="queue scene extraction for each chapter")
    p.add_argument(
        "--illustrate", action="store_true", help="also illustrate each new scene (implies --extract)"
    )
    p.add_argument(
        "--analyzer", default="builtin", help="text analyzer for --extract: builtin (default) or llm"
    )
    p.add_argument("--text-model", help='the llm analyzer\'s model (configs/models.toml, kind = "text")')
    p.add_argument("--steps", type=int, help="denoising steps of the illustrations")
    p.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for the jobs and print the scenes and images (default: in a terminal)",
    )
    p.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    p.set_defaults(func=cmd_ingest)

    e = commands.add_parser(
        "extract",
        help="queue scene extraction of a chapter or of a whole story",
        description="Queue an extract_scenes job for a chapter, or one per chapter of a story.",
    )
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--chapter", type=uuid_arg, metavar="ID")
    what.add_argument("--story", type=uuid_arg, metavar="ID")
    e.add_argument("--analyzer", default="builtin", help="builtin (default) or llm")
    e.add_argument("--text-model", help='the llm analyzer\'s model (configs/models.toml, kind = "text")')
    e.add_argument("--illustrate", action="store_true", help="illustrate each new scene")
    e.add_argument("--steps", type=int, help="denoising steps of the illustrations")
    e.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None)
    e.add_argument("--timeout", type=float, metavar="S")
    e.set_defaults(func=cmd_extract)

    s = commands.add_parser(
        "scenes",
        help="list a story's scenes with characters and emotions",
        description="Print a story's current scenes: characters, emotions, location.",
    )
    s.add_argument("story", type=uuid_arg, metavar="STORY_ID")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scenes)


def cmd_ingest(args) -> int:
    from enchant_worker import books
    from enchant_worker.cli.common import open_database
    from enchant_worker.config import get_settings
    from enchant_worker.text.ingest import read_file

    # 1. Read the file first: a bad file is told before anything is stored
    settings = get_settings()
    book = read_file(args.file, max_bytes=settings.ingest_max_bytes, fmt=args.format)
    extract = args.extract or args.illustrate
    if extract:
        _validate(args)
    # 2. Store
    _, db = open_database()
    with db.connection() as conn:
        user_id = _user(conn, args.user)
        try:
            report = books.save_book(conn, book, user_id=user_id, story_id=args.story, title=args.title)
        except LookupError as exc:
            raise InvalidJob(f"--story: {exc}") from None
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    if not extract:
        return 0
    # 3. Extract (and illustrate)
    chapter_ids = [c["id"] for c in report["chapters"]]
    return _extract(db, settings, chapter_ids, args, user_id)


def cmd_extract(args) -> int:
    from enchant_worker.cli.common import open_database
    from enchant_worker.sql import q

    _validate(args)
    settings, db = open_database()
    with db.connection() as conn:
        if args.chapter:
            row = conn.execute(q("book_chapter_get"), {"id": args.chapter}).fetchone()
            if row is None:
                raise InvalidJob(f"--chapter: no chapter has id {args.chapter}")
            chapter_ids, user_id = [args.chapter], row["owner_id"]
        else:
            rows = conn.execute(q("book_chapters"), {"story_id": args.story}).fetchall()
            if not rows:
                raise InvalidJob(f"--story: no story with id {args.story}, or it has no chapters")
            chapter_ids = [r["id"] for r in rows]
            user_id = one(conn.execute(q("extraction_new_scene_owner"), {"story_id": args.story}))["user_id"]
    return _extract(db, settings, chapter_ids, args, user_id)


def cmd_scenes(args) -> int:
    from enchant_worker.cli.common import open_database
    from enchant_worker.sql import q

    _, db = open_database()
    with db.connection() as conn:
        rows = conn.execute(q("scenes_of_story"), {"story_id": args.story}).fetchall()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no scenes (run `enchant-worker extract --story ID`)", file=sys.stderr)
    for row in rows:
        print(_scene_line(row))
    return 0


def _validate(args) -> None:
    from enchant_worker.handlers.extract_scenes import HANDLER

    if HANDLER.validate is not None:
        HANDLER.validate({"chapter_id": str(uuid.uuid4()), **_metadata(args)})


def _metadata(args) -> dict:
    metadata = {"analyzer": args.analyzer, "illustrate": bool(args.illustrate)}
    if args.steps is not None:
        metadata["steps"] = args.steps
    if args.text_model:
        metadata["text_model"] = args.text_model
    return metadata


def _user(conn, email: str | None) -> uuid.UUID | None:
    if not email:
        return None
    from enchant_worker.sql import q

    return conn.execute(q("api_user_ensure"), {"email": email}).fetchone()["id"]


def _print_report(report: dict) -> None:
    book = report["book"]
    state = "created" if report["created"] else ("unchanged" if report["unchanged"] else "updated")
    print(
        f"story {report['story_id']} ({state}): {report['title']!r}, {book['format']}, {book['encoding']}, "
        f"{len(report['chapters'])} chapter(s)",
        file=sys.stderr,
    )
    for chapter in report["chapters"]:
        words = f", {chapter['words']} words" if "words" in chapter else ""
        print(
            f"  chapter {chapter['number']}: {chapter['title'] or '(untitled)'}{words} [{chapter['status']}]",
            file=sys.stderr,
        )
    for note in book["notes"]:
        print(f"  note: {note}", file=sys.stderr)


def _extract(db, settings, chapter_ids: list, args, user_id) -> int:
    from enchant_worker.intake import SYSTEM_ACTOR, JobRequest, submit
    from enchant_worker.intake.submit import actor_for_user
    from enchant_worker.queue import JobQueue

    metadata = _metadata(args)
    queue = JobQueue(db.open())
    actor = actor_for_user(queue.conn, user_id) if user_id else SYSTEM_ACTOR  # the story owner's job
    jobs = [
        submit(queue.conn, actor, JobRequest("extract_scenes", {"chapter_id": str(c), **metadata}), settings)
        for c in chapter_ids
    ]
    wait = sys.stdout.isatty() if args.wait is None else args.wait
    if not wait:
        for job_id in jobs:
            print(job_id)
        print(
            f"queued {len(jobs)} extract_scenes job(s); a worker runs them (`enchant-worker worker`)",
            file=sys.stderr,
        )
        return 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    status = 0
    image_jobs: list[str] = []
    for job_id in jobs:
        done = _wait(queue, job_id, deadline)
        if done is None or done.status != "completed":
            why = "still running" if done is None else f"{done.status}: {done.error_message or ''}"
            print(f"error: extract_scenes job {job_id} {why}", file=sys.stderr)
            status = 1
            continue
        result = done.result or {}
        counts = result.get("counts", {})
        print(
            f"chapter {result.get('chapter_id')}: revision {result.get('revision')}, "
            + ", ".join(f"{v} {k}" for k, v in counts.items() if v),
            file=sys.stderr,
        )
        image_jobs += result.get("illustration_jobs") or []
    story_ids = set()
    with db.connection() as conn:
        from enchant_worker.sql import q

        for chapter_id in chapter_ids:
            row = conn.execute(q("book_chapter_get"), {"id": chapter_id}).fetchone()
            if row and row["story_id"] not in story_ids:
                story_ids.add(row["story_id"])
                for scene in conn.execute(q("scenes_of_story"), {"story_id": row["story_id"]}).fetchall():
                    print(_scene_line(scene))
    for image_job in image_jobs:
        done = _wait(queue, image_job, deadline)
        if done is None or done.status != "completed":
            why = "still running" if done is None else f"{done.status}: {done.error_message or ''}"
            print(f"error: generate_image job {image_job} {why}", file=sys.stderr)
            status = 1
            continue
        for image in (done.result or {}).get("images") or []:
            print(where(settings, image["path"]))
    return status


def _wait(queue, job_id, deadline: float | None):
    while True:
        job = queue.get(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            return job
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(POLL_INTERVAL_S)


def _scene_line(row: dict) -> str:
    people = "; ".join(
        f"{c['name']}" + (f" ({c['emotion']} {c['intensity']})" if c.get("emotion") else "")
        for c in row["characters"] or []
    )
    where = f" @ {row['location']}" if row["location"] else ""
    return (
        f"ch{row['chapter_number']}.{row['scene_number']} [{row['emotional_tone'] or '-'}] "
        f"{row['title'] or ''}{where} — {people or 'no named characters'}"
    )
