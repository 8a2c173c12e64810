"""`export` and `import`: a story to a file (pdf, epub, html, json, video) and a JSON export back in."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from enchant_worker.cli.common import open_database, print_json, uuid_arg
from enchant_worker.errors import EnchantError
from enchant_worker.jobspecs.export_story import FORMATS, IMAGE_QUALITIES, LAYOUTS, PAGE_SIZES
from enchant_worker.storage import local_copy, remote, storage_for, working_folder


class ExportError(EnchantError):
    """The export failed."""


def register(commands) -> None:
    p = commands.add_parser(
        "export",
        help="export a story to a file",
        description="Export a story as pdf, epub, html, json or video (here, without the queue; "
        "use `enqueue export_story` or the API to run it on a worker).",
    )
    p.add_argument("story_id", metavar="STORY", type=uuid_arg)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--layout", default="text-with-images", choices=LAYOUTS)
    p.add_argument("--image-quality", default="medium", choices=IMAGE_QUALITIES)
    p.add_argument("--no-images", action="store_true", help="text only")
    p.add_argument(
        "--css", type=Path, help="a CSS file to style html/epub (sanitised: no external URLs or scripts)"
    )
    p.add_argument("--page-size", default="A4", choices=PAGE_SIZES, help="PDF page size (default A4)")
    p.add_argument("--html-folder", action="store_true", help="html as a zip of index.html and images/")
    p.add_argument("--language", default="en", help="the book's language (BCP 47, default en)")
    p.add_argument("--video-resolution", default="720p", choices=["480p", "720p", "1080p"])
    p.add_argument("--scene-seconds", type=float, default=4.0, help="video: seconds per illustration")
    p.add_argument(
        "-o", "--output", type=Path, help="file to write (default: the story's title in this folder)"
    )
    p.set_defaults(func=cmd_export)

    p = commands.add_parser(
        "import",
        help="load a JSON story export into this database",
        description="Load a JSON export (enchant-worker export --format json) into this "
        "database: the story keeps its ids; its images are written to storage.",
    )
    p.add_argument("file", metavar="FILE.json", type=Path)
    p.add_argument("--owner", help="email of the user who will own the story (default: the export's author)")
    p.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    from enchant_worker.cli.progress import Display
    from enchant_worker.errors import InvalidJob
    from enchant_worker.export.run import ExportOptions, export_story
    from enchant_worker.export.story_data import StoryNotFound
    from enchant_worker.jobspecs.base import parse
    from enchant_worker.jobspecs.export_story import ExportStorySpec

    css = None
    if args.css is not None:
        try:
            css = args.css.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError(f"--css {args.css}: cannot be read ({exc})") from None
    try:
        spec = parse(
            ExportStorySpec,
            {
                "story_id": str(args.story_id),
                "format": args.format,
                "layout": args.layout,
                "image_quality": args.image_quality,
                "include_images": not args.no_images,
                "custom_styling": css,
                "page_size": args.page_size,
                "html_mode": "folder" if args.html_folder else "single",
                "language": args.language,
                "video_resolution": args.video_resolution,
                "scene_seconds": args.scene_seconds,
            },
        )
    except InvalidJob as exc:
        raise ExportError(str(exc)) from None
    settings, db = open_database()
    display = Display()
    with db.connection() as conn:
        try:
            result = export_story(
                conn,
                spec.story_id,
                ExportOptions.from_spec(spec),
                working_folder(settings),
                storage=remote(settings),
                progress=lambda pct, info: display.show(
                    "processing",
                    pct,
                    {
                        "stage": info.get("phase"),
                        "unit": "chapter",
                        "step": info.get("chapter"),
                        "total": info.get("chapters"),
                    },
                ),
            )
        except StoryNotFound as exc:
            raise ExportError(str(exc)) from None
        finally:
            display.close()
    target = args.output or Path(result.filename)
    shutil.copyfile(local_copy(storage_for(settings), result.file, settings.storage_cache), target)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print_json({**result.as_dict(), "output": str(target)})
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from enchant_worker.export.importer import ImportFailed, import_story, read_export

    try:
        data = read_export(args.file)
        settings, db = open_database()
        with db.connection() as conn:
            story_id = import_story(
                conn, data, settings.storage, owner_email=args.owner, storage=remote(settings)
            )
    except ImportFailed as exc:
        raise ExportError(str(exc)) from None
    print_json(
        {"story_id": str(story_id), "title": data["story"]["title"], "chapters": len(data["chapters"])}
    )
    return 0
