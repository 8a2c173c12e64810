"""Books in and scenes out (feature `scene_extraction`): create a story from text or a file, add
chapters, queue scene extraction, read chapters, scenes (characters, emotions, transitions, custom fields)
and characters. Every route checks the caller's rights on the story (read or write)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from enchant_worker import books
from enchant_worker.api.auth import READ, WRITE, Principal, story_rights
from enchant_worker.api.book_schemas import (
    ANALYZER_PATTERN,
    ChapterIngest,
    ChapterPublic,
    ChapterStatus,
    ChapterSummary,
    CharacterPublic,
    CharacterUpdate,
    ExtractAccepted,
    ExtractRequest,
    IngestReport,
    LocationPublic,
    ScenePublic,
    SceneUpdate,
    StoryIngest,
)
from enchant_worker.api.deps import PrincipalDep, SettingsDep, StoreDep
from enchant_worker.api.errors import (
    COMMON,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    invalid_job_error,
    responses,
)
from enchant_worker.api.store import Store
from enchant_worker.api.versions import SCENE_EXTRACTION
from enchant_worker.config import Settings
from enchant_worker.db.connection import one
from enchant_worker.errors import InvalidJob
from enchant_worker.intake import JobRequest, submit
from enchant_worker.jobspecs import parse
from enchant_worker.jobspecs.extract_scenes import ExtractScenesSpec
from enchant_worker.sql import q
from enchant_worker.text.errors import BookTooLarge, UnreadableBook
from enchant_worker.text.ingest import Book, decode, read_book, read_limited

router = APIRouter(tags=["scene extraction"], responses=COMMON)
SAME_AGAIN: dict[int | str, dict[str, Any]] = {
    200: {"model": IngestReport, "description": "The same text again: nothing changed"}
}
SAME_CHAPTER: dict[int | str, dict[str, Any]] = {
    200: {"model": ChapterStatus, "description": "The same text again: nothing changed"}
}
FEATURE = SCENE_EXTRACTION
ENTITY_KINDS = ("story", "chapter", "scene", "character", "location", "branch", "custom_field", "template")


# -- rights --------------------------------------------------------------------------------------


def story_of(store: Store, kind: str, entity_id: uuid.UUID) -> uuid.UUID | None:
    story_id: uuid.UUID | None = one(
        store.conn.execute(q("sa_entity_story"), {"kind": kind, "id": entity_id})
    )["story_id"]
    return story_id


def require(store: Store, principal: Principal, kind: str, entity_id: uuid.UUID, right: str) -> uuid.UUID:
    """The story the entity belongs to; 404 when there is no such entity, 403 without the right."""
    story_id = story_of(store, kind, entity_id)
    if story_id is None:
        raise NotFound(f"no {kind.replace('_', ' ')} with id {entity_id}")
    if right not in story_rights(store, principal, story_id):
        verb = "read" if right == READ else "change"
        raise Forbidden(
            f"this key may not {verb} {kind.replace('_', ' ')} {entity_id} (story {story_id} belongs "
            "to another user)"
        )
    return story_id


def custom_values(
    store: Store, story_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID
) -> list[dict[str, Any]]:
    return store.conn.execute(
        q("sa_custom_values_of"), {"story_id": story_id, "entity_type": entity_type, "entity_id": entity_id}
    ).fetchall()


# -- stories and chapters in -----------------------------------------------------------------------


@router.post(
    "/stories",
    response_model=IngestReport,
    status_code=status.HTTP_201_CREATED,
    responses={**SAME_AGAIN, **responses(413)},
)
def create_story(
    body: StoryIngest,
    store: StoreDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    extract: bool = False,
    illustrate: bool = False,
    analyzer: Annotated[str, Query(pattern=ANALYZER_PATTERN)] = "builtin",
) -> dict[str, Any]:
    """A new story from plain text or Markdown, split into chapters at headings ("Chapter 12", "CHAPTER
    XII", `#`); the caller owns it. The same text twice is the same story (200, `unchanged`). With
    `extract=true`, an extract_scenes job per chapter is queued (`illustrate=true`: also illustrate)."""
    data = body.text.encode()
    book = _read(data, "text", settings.ingest_max_bytes, body.format)
    report = books.save_book(
        store.conn,
        book,
        user_id=principal.user_id,
        title=body.title,
        description=body.description,
        genre=body.genre,
    )
    return _finish(report, store, settings, principal, response, extract, illustrate, analyzer)


@router.post(
    "/stories/upload",
    response_model=IngestReport,
    status_code=status.HTTP_201_CREATED,
    responses={**SAME_AGAIN, **responses(413)},
)
def upload_story(
    file: Annotated[UploadFile, File(description="a .txt, .md or .epub file")],
    store: StoreDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    title: Annotated[str | None, Form(max_length=500)] = None,
    format: Annotated[str | None, Form(pattern=r"^(text|markdown|epub)$")] = None,
    extract: bool = False,
    illustrate: bool = False,
    analyzer: Annotated[str, Query(pattern=ANALYZER_PATTERN)] = "builtin",
) -> dict[str, Any]:
    """A new story from a file: plain text (encoding detected), Markdown or EPUB (one chapter per spine
    item). Over ENCHANT_INGEST_MAX_BYTES: 413 naming the limit. An unreadable file (empty, binary, broken
    or DRM-protected EPUB): 422 saying why."""
    data = _upload_bytes(file, settings.ingest_max_bytes)
    book = _read(data, file.filename or "upload", settings.ingest_max_bytes, format)
    report = books.save_book(store.conn, book, user_id=principal.user_id, title=title)
    return _finish(report, store, settings, principal, response, extract, illustrate, analyzer)


@router.post(
    "/stories/{story_id}/chapters",
    response_model=ChapterStatus,
    status_code=status.HTTP_201_CREATED,
    responses=SAME_CHAPTER,
)
def add_chapter(
    story_id: uuid.UUID, body: ChapterIngest, store: StoreDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """One chapter from text: after the last one, or as chapter `number` (its text replaced when it
    differs). The same text added twice is one chapter (200, `unchanged`). Needs write rights."""
    require(store, principal, "story", story_id, WRITE)
    try:
        text, _, _ = decode(body.text.encode(), "text")
    except UnreadableBook as exc:
        raise Unprocessable(("body", "text"), str(exc), "unreadable_book") from None
    result = books.add_chapter(store.conn, story_id, text.strip("\n"), title=body.title, number=body.number)
    if result["status"] == "unchanged":
        response.status_code = status.HTTP_200_OK
    return result


@router.post(
    "/stories/{story_id}/chapters/upload",
    response_model=IngestReport,
    status_code=status.HTTP_201_CREATED,
    responses={**SAME_AGAIN, **responses(413)},
)
def upload_chapters(
    story_id: uuid.UUID,
    file: Annotated[UploadFile, File()],
    store: StoreDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    format: Annotated[str | None, Form(pattern=r"^(text|markdown|epub)$")] = None,
    extract: bool = False,
    illustrate: bool = False,
    analyzer: Annotated[str, Query(pattern=ANALYZER_PATTERN)] = "builtin",
) -> dict[str, Any]:
    """The chapters of a file added after the story's last chapter (a chapter whose text is already
    there is kept as it is). Needs write rights."""
    require(store, principal, "story", story_id, WRITE)
    data = _upload_bytes(file, settings.ingest_max_bytes)
    book = _read(data, file.filename or "upload", settings.ingest_max_bytes, format)
    report = books.save_book(store.conn, book, user_id=principal.user_id, story_id=story_id)
    return _finish(report, store, settings, principal, response, extract, illustrate, analyzer)


def _upload_bytes(file: UploadFile, limit: int) -> bytes:
    try:
        return read_limited(file.file, limit, file.filename or "the upload")
    except BookTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None


def _read(data: bytes, filename: str, limit: int, fmt: str | None) -> Book:
    try:
        return read_book(data, filename=filename, max_bytes=limit, fmt=fmt)
    except BookTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except UnreadableBook as exc:
        raise Unprocessable(
            ("body", "file" if filename not in ("text",) else "text"), str(exc), "unreadable_book"
        ) from None


def _finish(
    report: dict[str, Any],
    store: Store,
    settings: Settings,
    principal: Principal,
    response: Response,
    extract: bool,
    illustrate: bool,
    analyzer: str,
) -> dict[str, Any]:
    if report["unchanged"]:
        response.status_code = status.HTTP_200_OK
    report["jobs"] = []
    if extract or illustrate:
        metadata = {"analyzer": analyzer, "illustrate": illustrate}
        for chapter in report["chapters"]:
            _validate_extract({"chapter_id": str(chapter["id"]), **metadata})
        report["jobs"] = [
            submit(
                store.conn,
                principal.actor,
                JobRequest("extract_scenes", {"chapter_id": str(c["id"]), **metadata}),
                settings,
            )
            for c in report["chapters"]
        ]
    return report


def _validate_extract(metadata: dict[str, Any]) -> None:
    try:
        parse(ExtractScenesSpec, metadata)
    except InvalidJob as exc:
        raise invalid_job_error(exc, ("body",)) from None


# -- chapters ------------------------------------------------------------------------------------


@router.get("/stories/{story_id}/chapters", response_model=list[ChapterSummary])
def list_chapters(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The story's chapters in order, with how many scenes each has."""
    require(store, principal, "story", story_id, READ)
    return store.conn.execute(q("book_chapters"), {"story_id": story_id}).fetchall()


@router.get("/chapters/{chapter_id}", response_model=ChapterPublic)
def get_chapter(chapter_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """A chapter with its text and its latest extraction (revision, analyzer, what changed)."""
    require(store, principal, "chapter", chapter_id, READ)
    return one(store.conn.execute(q("sa_chapter"), {"id": chapter_id}))


@router.post(
    "/chapters/{chapter_id}/extract-scenes",
    response_model=ExtractAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
def extract_scenes(
    chapter_id: uuid.UUID,
    body: ExtractRequest,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> ExtractAccepted:
    """Queue an extract_scenes job for the chapter (write rights). Re-extraction is idempotent: scenes
    that did not change are kept, scenes with images or edits are never deleted (retired instead), and
    the chapter's revision goes up only when something changed. `illustrate`: a generate_image job per
    new scene."""
    require(store, principal, "chapter", chapter_id, WRITE)
    metadata = {"chapter_id": str(chapter_id), "analyzer": body.analyzer, "illustrate": body.illustrate}
    if body.steps is not None:
        metadata["steps"] = body.steps
    if body.text_model is not None:
        metadata["text_model"] = body.text_model
    _validate_extract(metadata)
    job_id = submit(store.conn, principal.actor, JobRequest("extract_scenes", metadata), settings)
    return ExtractAccepted(
        job_id=job_id,
        chapter_id=chapter_id,
        status="pending",
        message=f"queued; GET /jobs/{job_id} shows it, GET /chapters/{chapter_id}/scenes the scenes",
    )


@router.get("/chapters/{chapter_id}/scenes", response_model=list[ScenePublic])
def list_scenes(
    chapter_id: uuid.UUID, store: StoreDep, principal: PrincipalDep, include_retired: bool = False
) -> list[dict[str, Any]]:
    """The chapter's scenes in order: characters with their emotion and how it changed coming in
    (transition), location, image count, custom field values."""
    story_id = require(store, principal, "chapter", chapter_id, READ)
    rows = store.conn.execute(
        q("sa_scenes"), {"scene_id": None, "chapter_id": chapter_id, "retired": include_retired}
    ).fetchall()
    for row in rows:
        row["custom_fields"] = custom_values(store, story_id, "scene", row["id"])
    return rows


@router.get("/scenes/{scene_id}", response_model=ScenePublic)
def get_scene(scene_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """One scene with its characters, their emotions and transitions, its location and custom fields."""
    story_id = require(store, principal, "scene", scene_id, READ)
    row = one(store.conn.execute(q("sa_scenes"), {"scene_id": scene_id, "chapter_id": None, "retired": True}))
    row["custom_fields"] = custom_values(store, story_id, "scene", scene_id)
    return row


@router.patch("/scenes/{scene_id}", response_model=ScenePublic)
def update_scene(
    scene_id: uuid.UUID, body: SceneUpdate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Correct a scene's title, summary or tone (write rights). Recorded in edit_history: a later
    extraction keeps an edited scene as it is, and never deletes it."""
    story_id = require(store, principal, "scene", scene_id, WRITE)
    changes = body.model_dump(exclude_unset=True)
    comment = changes.pop("comment", None)
    with store.transaction():
        store.conn.execute(
            q("sa_scene_update"),
            {
                "id": scene_id,
                **{f"set_{k}": k in changes for k in ("title", "summary", "emotional_tone")},
                **{k: changes.get(k) for k in ("title", "summary", "emotional_tone")},
            },
        )
        store.add_edit_history(
            entity_type="scene",
            entity_id=scene_id,
            user_id=principal.user_id,
            action_type="update",
            changes=changes,
            comment=comment,
        )
    row = one(store.conn.execute(q("sa_scenes"), {"scene_id": scene_id, "chapter_id": None, "retired": True}))
    row["custom_fields"] = custom_values(store, story_id, "scene", scene_id)
    return row


@router.get("/scenes/{scene_id}/characters", response_model=list[dict[str, Any]])
def scene_characters(scene_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The characters present in a scene, each with its emotion there (primary, intensity, secondary,
    triggers, face and body notes), the transition into this scene, and its custom field values."""
    story_id = require(store, principal, "scene", scene_id, READ)
    row = one(store.conn.execute(q("sa_scenes"), {"scene_id": scene_id, "chapter_id": None, "retired": True}))
    characters: list[dict[str, Any]] = row["characters"]
    for character in characters:
        character["custom_fields"] = custom_values(store, story_id, "character", character["id"])
    return characters


@router.get("/stories/{story_id}/characters", response_model=list[CharacterPublic])
def list_characters(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The story's characters (one per person: aliases merged), with custom field values."""
    require(store, principal, "story", story_id, READ)
    rows = store.conn.execute(q("sa_characters"), {"story_id": story_id}).fetchall()
    for row in rows:
        row["custom_fields"] = custom_values(store, story_id, "character", row["id"])
    return rows


@router.get("/stories/{story_id}/locations", response_model=list[LocationPublic])
def list_locations(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The story's locations with how many current scenes take place there, and custom field values."""
    require(store, principal, "story", story_id, READ)
    rows = store.conn.execute(q("sa_locations"), {"story_id": story_id}).fetchall()
    for row in rows:
        row["custom_fields"] = custom_values(store, story_id, "location", row["id"])
    return rows


@router.patch("/characters/{character_id}", response_model=CharacterPublic)
def update_character(
    character_id: uuid.UUID, body: CharacterUpdate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Correct a character: name, aliases (later extractions merge these names into it), appearance,
    personality. Needs write rights; recorded in edit_history."""
    story_id = require(store, principal, "character", character_id, WRITE)
    changes = body.model_dump(exclude_unset=True)
    with store.transaction():
        row = one(
            store.conn.execute(
                q("sa_character_update"),
                {
                    "id": character_id,
                    "name": changes.get("name"),
                    "aliases": changes.get("aliases"),
                    "set_appearance": "appearance_description" in changes,
                    "appearance": changes.get("appearance_description"),
                    "set_personality": "personality" in changes,
                    "personality": changes.get("personality"),
                },
            )
        )
        store.add_edit_history(
            entity_type="character",
            entity_id=character_id,
            user_id=principal.user_id,
            action_type="update",
            changes=changes,
        )
    row["custom_fields"] = custom_values(store, story_id, "character", character_id)
    return row
