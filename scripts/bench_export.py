"""Export speed and memory on a generated story: seconds and peak memory per format, and the EPUB
writer side by side with pandoc converting the same text and images.

    .venv/bin/python scripts/bench_export.py                       # 30 chapters, 300 scenes, 300 images
    .venv/bin/python scripts/bench_export.py --chapters 5 --scenes 4 --video-scenes 6   # a quick look

The story is written straight into a fresh database `bench_export_<pid>` on the server of
`--database-url` / ENCHANT_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres), with
512×512 PNG illustrations in a temporary storage folder; the database is dropped at the end.

Each format runs in a fresh child process, so its peak resident memory (ru_maxrss) is its own: "cold"
with the resampled-image cache emptied first (every image resampled), then "warm" (the cache reused, as
every later export of the story is). Video is timed at 720p on the first `--video-scenes` scenes and
reported as times real time (video seconds per second of encoding). pandoc (Debian's) gets the story as
Markdown with the same medium-quality JPEGs and writes EPUB 3; its time and peak memory are measured the
same way. Targets (issue 12): EPUB and HTML under 10 s, PDF under 60 s, JSON under 3 s, peak memory under
1 GiB, video at least 4× real time at 720p on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

TARGETS_S = {"epub": 10.0, "html": 10.0, "pdf": 60.0, "json": 3.0}
MEMORY_TARGET_MB = 1024


def child(args: argparse.Namespace) -> None:
    """One export in this process; prints seconds, peak RSS and the result as JSON."""
    from enchant_worker.db.connection import connect
    from enchant_worker.export.run import ExportOptions, export_story

    options = json.loads(args.options)
    with connect(args.url) as conn:
        start = time.perf_counter()
        result = export_story(conn, uuid.UUID(args.story), ExportOptions(**options), Path(args.storage))
        seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": usage.ru_maxrss / 1024,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "bytes": result.bytes,
                "file": result.file,
            }
        )
    )


def run_child(url: str, story: uuid.UUID, storage: Path, options: dict, cold: bool) -> dict:
    if cold:
        shutil.rmtree(storage / "derived", ignore_errors=True)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--url",
            url,
            "--story",
            str(story),
            "--storage",
            str(storage),
            "--options",
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def pandoc_epub(conn, story_id: uuid.UUID, storage: Path, work: Path) -> dict | None:
    """pandoc converting the same text and (medium) images to EPUB 3, timed in its own process."""
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        return None
    from enchant_worker.export.document import Figure, build_book
    from enchant_worker.export.images import PictureCache
    from enchant_worker.export.story_data import load_story

    book = build_book(
        load_story(conn, story_id),
        layout="text-with-images",
        include_images=True,
        image_quality="medium",
        pictures=PictureCache(storage),
    )
    lines = [f"% {book.title}\n% {book.author}\n"]
    for chapter in book.chapters:
        lines.append(f"\n# {chapter.heading}\n")
        for block in chapter.blocks:
            if isinstance(block, Figure):
                lines.append(f"\n![{block.caption}]({block.picture.path})\n")
            else:
                lines.append(f"\n{block.text}\n")
    source = work / "book.md"
    source.write_text("".join(lines))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [pandoc, str(source), "-o", str(work / "pandoc.epub"), "--to", "epub3", "--metadata", "lang=en"],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": seconds,
        "peak_mb": max(peak, before) / 1024,
        "bytes": (work / "pandoc.epub").stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ENCHANT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--chapters", type=int, default=30)
    parser.add_argument("--scenes", type=int, default=10, help="scenes (and images) per chapter")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--video-scenes", type=int, default=20, help="scenes in the 720p video run")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--story", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import psycopg

    from enchant_worker.db.connection import connect
    from enchant_worker.db.migrate import migrate
    from enchant_worker.export.video_writer import plan
    from tests.support.stories import make_story

    name = f"bench_export_{os.getpid()}"
    admin_url = psycopg.conninfo.make_conninfo(args.database_url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(args.database_url, dbname=name)
    work = Path(tempfile.mkdtemp(prefix="bench_export_"))
    storage = work / "storage"
    figures: dict = {}
    try:
        with connect(url) as conn:
            migrate(conn, REPO / "migrations")
            t = time.perf_counter()
            story = make_story(
                conn,
                storage,
                title="Benchmark of the Lantern River",
                chapters=args.chapters,
                scenes_per_chapter=args.scenes,
                image_size=(args.image_size,) * 2,
                paragraphs=8,
            )
            video_story = make_story(
                conn,
                storage,
                title="Video",
                chapters=max(1, args.video_scenes // 10),
                scenes_per_chapter=min(10, args.video_scenes),
                image_size=(args.image_size,) * 2,
                seed=2,
            )
            print(
                f"story: {args.chapters} chapters, {args.chapters * args.scenes} scenes and images "
                f"({time.perf_counter() - t:.1f} s to generate)"
            )
            rows = []
            for fmt in ("json", "html", "epub", "pdf"):
                cold = run_child(url, story.story_id, storage, {"format": fmt}, cold=True)
                warm = run_child(url, story.story_id, storage, {"format": fmt}, cold=False)
                figures[fmt] = {"cold": cold, "warm": warm}
                rows.append((fmt, cold, warm, TARGETS_S[fmt]))
            reference = pandoc_epub(conn, story.story_id, storage, work)
            opts = {"format": "video", "video_resolution": "720p", "scene_seconds": 4.0}
            video = run_child(url, video_story.story_id, storage, opts, cold=False)
            from enchant_worker.export.document import build_book
            from enchant_worker.export.images import PictureCache
            from enchant_worker.export.story_data import load_story

            book = build_book(
                load_story(conn, video_story.story_id),
                layout="text-with-images",
                include_images=True,
                image_quality="high",
                pictures=PictureCache(storage),
            )
            video["video_s"] = plan(book, 4.0)[1]
            video["times_real_time"] = video["video_s"] / video["seconds"]
            figures["video"] = video
            figures["pandoc_epub"] = reference
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'format':<8}{'cold s':>9}{'warm s':>9}{'target s':>10}{'peak MiB (cold)':>17}{'size MiB':>10}")
    for fmt, cold, warm, target in rows:
        print(
            f"{fmt:<8}{cold['seconds']:>9.2f}{warm['seconds']:>9.2f}{target:>10.0f}{cold['peak_mb']:>17.0f}"
            f"{cold['bytes'] / 2**20:>10.1f}"
        )
    print(
        f"{'video':<8}{video['seconds']:>9.2f}{'':>9}{'':>10}{video['peak_mb']:>17.0f}{video['bytes'] / 2**20:>10.1f}"
        f"   {video['video_s']:.0f} s of 720p video: {video['times_real_time']:.1f}x real time (target >= 4)"
    )
    # On a shared machine the wall clock counts other people's work; CPU time does not. Two dedicated
    # cores give at most 2 CPU-seconds per second.
    print(
        f"{'':<8}video CPU time {video['cpu_s']:.1f} s: {video['video_s'] / (video['cpu_s'] / 2):.1f}x real time "
        "on 2 dedicated cores (upper bound from CPU time)"
    )
    if reference:
        epub = figures["epub"]["warm"]
        print(
            f"\nEPUB vs pandoc (same text, same medium JPEGs): ours {epub['seconds']:.2f} s, {epub['peak_mb']:.0f} MiB; "
            f"pandoc {reference['seconds']:.2f} s, {reference['peak_mb']:.0f} MiB "
            f"(pandoc/ours time {reference['seconds'] / epub['seconds']:.1f}x)"
        )
    else:
        print("\npandoc not installed: no reference run (Debian: apt-get install pandoc)")
    worst = max([c["peak_mb"] for _, c, _, _ in rows] + [video["peak_mb"]])
    print(f"peak memory, worst format: {worst:.0f} MiB (target < {MEMORY_TARGET_MB})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
