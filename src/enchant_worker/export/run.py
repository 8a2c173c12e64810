"""One export from start to finish: read the story, build the book, run the format's writer into a
temporary file under the storage folder, then move it to its content-addressed name. A failure or a
cancellation removes the temporary file: nothing half-written is ever left under an export's name."""

from __future__ import annotations

import errno
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enchant_worker.content_address import address_hash
from enchant_worker.db.connection import Connection
from enchant_worker.export import css as css_rules
from enchant_worker.export.document import build_book
from enchant_worker.export.images import PictureCache, file_sha256
from enchant_worker.export.names import safe_filename
from enchant_worker.export.story_data import load_story
from enchant_worker.storage import Storage

EXPORTS_FOLDER = "exports"


class ExportFailed(Exception):
    """The export could not be written."""


@dataclass(frozen=True)
class ExportOptions:
    format: str
    include_images: bool = True
    image_quality: str = "medium"
    layout: str = "text-with-images"
    custom_styling: str | None = None
    page_size: str = "A4"
    html_mode: str = "single"
    language: str = "en"
    video_resolution: str = "720p"
    scene_seconds: float = 4.0

    @classmethod
    def from_spec(cls, spec: Any) -> ExportOptions:
        return cls(**{f: getattr(spec, f) for f in cls.__dataclass_fields__})


@dataclass
class ExportResult:
    file: str  # storage-relative, content-addressed
    filename: str  # for Content-Disposition
    media_type: str
    bytes: int
    sha256: str
    chapters: int
    illustrations: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def suffix_and_type(options: ExportOptions) -> tuple[str, str]:
    from enchant_worker.export import epub_writer, html_writer, json_writer, pdf_writer, video_writer

    if options.format == "html":
        return (
            (html_writer.FOLDER_SUFFIX, html_writer.FOLDER_MEDIA_TYPE)
            if options.html_mode == "folder"
            else (html_writer.SUFFIX, html_writer.MEDIA_TYPE)
        )
    module = {"json": json_writer, "epub": epub_writer, "pdf": pdf_writer, "video": video_writer}[
        options.format
    ]
    return module.SUFFIX, module.MEDIA_TYPE


def export_story(
    conn: Connection,
    story_id: uuid.UUID,
    options: ExportOptions,
    storage_root: Path,
    *,
    storage: Storage | None = None,
    progress: Callable[[float, dict[str, Any]], None] = lambda p, i: None,
    check: Callable[[], None] = lambda: None,
) -> ExportResult:
    """Writes the export; `check` is called at every chapter and raises to stop (cancellation).
    With `storage` (object storage), pictures are read from it and the export is uploaded to it;
    `storage_root` is then only the local working folder."""
    from enchant_worker.export import epub_writer, html_writer, json_writer, pdf_writer, video_writer

    # 1. Read the story (text in memory, images by name).
    data = load_story(conn, story_id)
    pictures = PictureCache(storage_root, storage)
    suffix, media_type = suffix_and_type(options)
    css, removed = css_rules.sanitize(options.custom_styling)
    notes = [f"Custom styling: removed {', '.join(removed)}."] if removed else []

    def step(start: float, span: float, phase: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            check()
            progress(
                start + span * done / max(total, 1), {"phase": phase, "chapter": done, "chapters": total}
            )

        return report

    # 2. Build the document model (images resampled once per quality, reused across exports).
    book = None
    if options.format != "json":
        book = build_book(
            data,
            layout=options.layout,
            include_images=options.include_images,
            image_quality="high" if options.format == "video" else options.image_quality,
            pictures=pictures,
            language=options.language,
            css=css,
            page_size=options.page_size,
            on_chapter=step(0, 40, "images"),
        )
        book.notes[:0] = notes
        notes = book.notes

    # 3. Write into a temporary file beside the final place, then 4. move it to its content address.
    folder = storage_root / EXPORTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            report = step(0 if book is None else 40, 100 if book is None else 60, "writing")
            if options.format == "json":
                json_writer.write(
                    data, out, report, include_images=options.include_images, pictures=pictures, notes=notes
                )
            elif options.format == "html":
                assert book is not None  # built for every format but json
                html_writer.write(book, out, report, folder=options.html_mode == "folder")
            elif options.format == "epub":
                assert book is not None
                epub_writer.write(book, out, report)
            elif options.format == "pdf":
                pdf_writer.write(book, out, report)
            else:
                video_writer.write(
                    book, out, report, resolution=options.video_resolution, scene_s=options.scene_seconds
                )
            out.flush()
            os.fsync(out.fileno())
        digest = file_sha256(tmp)
        relative = f"{EXPORTS_FOLDER}/{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
        assert address_hash(relative) == digest
        size = tmp.stat().st_size
        if storage is not None:
            storage.put_file(relative, tmp)
            tmp.unlink()
        else:
            target = storage_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise ExportFailed(
                f"the storage disk is full ({exc.strerror}) while writing the {options.format} "
                f"export; free space under {storage_root} and retry the job. Nothing was kept."
            ) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    figures = (
        book.figure_count
        if book is not None
        else sum(1 for c in data["chapters"] for s in c["scenes"] if s["images"])
    )
    return ExportResult(
        file=relative,
        filename=safe_filename(data["story"]["title"], suffix),
        media_type=media_type,
        bytes=size,
        sha256=digest,
        chapters=len(data["chapters"]),
        illustrations=figures,
        notes=notes,
    )
