"""The one check of what a job names: every `Ref` field of its spec, against the job's user.

Run at enqueue (API and CLI, through `submit`) and again by the worker before a job runs (the row may
have been inserted by plain SQL, or the user may have lost a right since). A missing row, or a row of
another kind, is `InvalidJob` (422 at enqueue); a row the user may not use is `AccessDenied` (403).
Messages name the field and never repeat a server path.
"""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from enchant_worker.errors import AccessDenied, InvalidJob
from enchant_worker.intake.actor import Actor
from enchant_worker.intake.rights import READ, VIEW, WRITE, story_rights
from enchant_worker.jobspecs import Reference, references
from enchant_worker.jobspecs.base import STORY_KINDS
from enchant_worker.model_catalog import ModelRegistry
from enchant_worker.sql import q
from enchant_worker.storage import fetch_folder, remote

UPLOADS_DIR = "uploads"  # under storage: uploads/<user id or "admin">/<upload id>/
LORA_SUFFIX = ".safetensors"
_VERB = {READ: "read", WRITE: "change", VIEW: "view"}
_ROW_NAMES = {"branch": "story branch"}
_NOR_PUBLISHED = ", nor published in the community"


def check_references(conn, actor: Actor, spec: Any, settings: Any) -> None:
    """Raises for the first reference of `spec` that `actor` may not use."""
    for ref in [*references(spec), *getattr(spec, "implied_references", list)()]:
        check_reference(conn, actor, ref, settings)


def check_reference(conn, actor: Actor, ref: Reference, settings: Any) -> None:
    if ref.kind in STORY_KINDS:
        _story_bound(conn, actor, ref)
    elif ref.kind == "image":
        _image(conn, actor, ref)
    elif ref.kind in ("preset", "lora"):
        _named_row(conn, actor, ref, settings)
    elif ref.kind == "lora_training":
        _lora_training(conn, actor, ref)
    elif ref.kind in ("upload", "training_source"):
        training_source_folder(conn, actor, ref.field, ref.value, settings, uploads_only=ref.kind == "upload")
    elif ref.kind == "user":
        if not actor.is_admin and _uuid(ref) != actor.user_id:
            raise AccessDenied(ref.field, "a user may start work only for themselves")
        if conn.execute(q("intake_user"), {"id": _uuid(ref)}).fetchone() is None:
            raise InvalidJob(f"{ref.field}: no user has id {ref.value}")
    elif ref.kind == "model":
        registry = ModelRegistry.from_settings(settings)
        if ref.value not in registry.models:
            raise InvalidJob(
                f"{ref.field}: unknown model {ref.value!r}; known models: {', '.join(registry.names())}"
            )
    elif ref.kind == "text_model":
        from enchant_worker.text.errors import AnalyzerUnavailable
        from enchant_worker.text.models import resolve_text_model

        try:
            name = None if ref.value is None else str(ref.value)  # None: the configured default
            resolve_text_model(Path(settings.models_dir), Path(settings.models_config), name)
        except AnalyzerUnavailable as exc:
            raise InvalidJob(f"{ref.field}: {str(exc).removeprefix('text_model: ')}") from None
    elif ref.kind == "base_model":
        _base_model(actor, ref, settings)
    else:  # a kind jobspecs knows and this module does not: refuse rather than let it through
        raise AccessDenied(ref.field, f"references of kind {ref.kind!r} cannot be checked")


def _story_bound(conn, actor: Actor, ref: Reference) -> None:
    row_id = _uuid(ref)
    story_id = conn.execute(q("intake_entity_story"), {"kind": ref.kind, "id": row_id}).fetchone()["story_id"]
    if story_id is None:
        raise InvalidJob(f"{ref.field}: no {_ROW_NAMES.get(ref.kind, ref.kind)} has id {row_id}")
    if ref.right not in story_rights(conn, actor, story_id):
        raise AccessDenied(
            ref.field,
            f"this user may not {_VERB[ref.right]} {ref.kind} {row_id} "
            f"(its story is not theirs or not shared with them{_NOR_PUBLISHED if ref.right == VIEW else ''})",
        )


def _image(conn, actor: Actor, ref: Reference) -> None:
    row_id = _uuid(ref)
    row = conn.execute(q("intake_image"), {"id": row_id}).fetchone()
    if row is None:
        raise InvalidJob(f"{ref.field}: no image has id {row_id}")
    if actor.owns(row["user_id"]) or ref.right in story_rights(conn, actor, row["story_id"]):
        return
    unpublished = " and is not in a story published in the community" if ref.right == VIEW else ""
    raise AccessDenied(ref.field, f"image {row_id} belongs to another user{unpublished}")


def _named_row(conn, actor: Actor, ref: Reference, settings: Any) -> None:
    """A preset or a LoRA to apply, by id or name: the user's own, a public one, or (admins) any."""
    value = ref.value
    row_id = _as_uuid(value)
    what = "generation preset" if ref.kind == "preset" else "LoRA"
    row = conn.execute(
        q(f"intake_{ref.kind}"),
        {
            "id": row_id,
            "name": None if row_id else str(value),
            "user_id": actor.user_id,
            "admin": actor.is_admin,
        },
    ).fetchone()
    if row is not None and not row["usable"]:
        raise AccessDenied(ref.field, f"{what} {value} is private to another user")
    if row is None and ref.kind == "lora" and row_id is None and _lora_file_exists(str(value), settings):
        return  # a LoRA file placed in a LoRA folder by the operator: usable by everyone
    if row is None and ref.kind == "lora" and row_id is None:
        raise InvalidJob(
            f"{ref.field}: unknown LoRA {value!r}: neither this user's nor a public LoRA has "
            "that name, and no LoRA folder holds a file of that name"
        )
    if row is None:
        raise InvalidJob(f"{ref.field}: no {what} {value!r} (by id or name) is available to this user")
    if ref.kind == "lora" and row["status"] != "ready":
        raise InvalidJob(f"{ref.field}: LoRA {row['name']!r} is not ready (status {row['status']})")


def _base_model(actor: Actor, ref: Reference, settings: Any) -> None:
    """A configured model, or a folder under the models folder; a path only for admins and the CLI."""
    name = str(ref.value)
    registry = ModelRegistry.from_settings(settings)
    if name in registry.models:
        return
    models_dir = Path(settings.models_dir)
    is_path = "/" in name or "\\" in name or name.startswith((".", "~"))
    if is_path and not actor.is_admin:
        raise AccessDenied(
            ref.field,
            "name a configured base model or a folder under the models folder; server paths are not accepted",
        )
    folder = Path(name).expanduser() if is_path else models_dir / name
    if not (folder / "model_index.json").is_file():
        available = sorted(
            {*registry.names(), *(p.parent.name for p in models_dir.glob("*/model_index.json"))}
        )
        raise InvalidJob(
            f"{ref.field}: unknown base model {name!r}; available: {', '.join(available) or 'none'}"
        )


def _lora_training(conn, actor: Actor, ref: Reference) -> None:
    row_id = _uuid(ref)
    row = conn.execute(
        q("intake_lora"), {"id": row_id, "name": None, "user_id": actor.user_id, "admin": actor.is_admin}
    ).fetchone()
    if row is None:
        raise InvalidJob(f"{ref.field}: no LoRA has id {row_id}")
    if not actor.owns(row["user_id"]):
        raise AccessDenied(ref.field, f"LoRA {row_id} belongs to another user; only its owner may train it")


def training_source_folder(
    conn,
    actor: Actor,
    field: str,
    value: Any,
    settings: Any,
    *,
    uploads_only: bool = False,
    fetch: bool = False,
) -> Path:
    """The folder of training images that `value` names, checked for `actor`:
    - an upload id (the user's own upload; an admin's any);
    - a storage-relative path under the user's upload area (`uploads/<user id>/...`);
    - for admins and the CLI only, a folder under one of ENCHANT_TRAINING_DIRS.
    Nothing else: callers never name server paths. With object storage, an upload made on another host
    is only looked up (one listing); `fetch` (the training job, which reads the files) copies it here."""
    text = str(value)
    upload_id = _as_uuid(text)
    storage = Path(settings.storage).resolve()
    if upload_id is not None:
        row = conn.execute(q("intake_upload"), {"id": upload_id}).fetchone()
        if row is None:
            raise InvalidJob(f"{field}: no upload has id {upload_id}")
        if not actor.owns(row["user_id"]):
            raise AccessDenied(field, f"upload {upload_id} belongs to another user")
        folder = _inside(storage, storage / row["folder"], field)
        return _uploaded(settings, storage, folder, fetch=fetch) or folder
    relative = PurePosixPath(text)
    if not relative.is_absolute() and relative.parts[:1] == (UPLOADS_DIR,):
        area = UPLOADS_DIR + "/" + (str(actor.user_id) if actor.user_id else "admin")
        if not actor.is_admin and not text.startswith(area + "/"):
            raise AccessDenied(field, "this path is in another user's upload area")
        found = _uploaded(settings, storage, _inside(storage, storage / relative, field), fetch=fetch)
        if found is None:
            raise InvalidJob(f"{field}: no upload folder {text!r} in storage")
        return found
    if uploads_only or not actor.is_admin:
        raise AccessDenied(
            field,
            "name an upload (its id from POST /v2/uploads, or its storage path "
            "uploads/<your user id>/...); server paths are not accepted",
        )
    path = Path(text).expanduser().resolve()
    roots = [Path(r).expanduser().resolve() for r in settings.training_dirs]
    if not any(path == root or path.is_relative_to(root) for root in roots):
        raise AccessDenied(
            field,
            "an admin may name a folder only under ENCHANT_TRAINING_DIRS "
            f"({len(roots)} configured); upload the images instead",
        )
    if not path.is_dir():
        raise InvalidJob(f"{field}: no folder {text!r} under ENCHANT_TRAINING_DIRS")
    return path


def _uploaded(settings: Any, storage: Path, folder: Path, *, fetch: bool) -> Path | None:
    """The upload folder, or None when there is no such upload. With object storage, an upload made on
    another host is looked up (one listing), or copied here with `fetch`. Called only on a folder already
    checked to be inside storage."""
    if folder.is_dir():
        return folder
    objects = remote(settings)
    if objects is None:
        return None
    prefix = folder.relative_to(storage).as_posix()
    found = fetch_folder(objects, prefix, storage) if fetch else objects.list(prefix)
    return folder if found else None


def _inside(storage: Path, path: Path, field: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(storage):
        raise AccessDenied(field, "the path leaves the storage folder")
    return resolved


def _lora_file_exists(name: str, settings: Any) -> bool:
    if "/" in name or "\\" in name or name.startswith("."):
        return False
    file_name = name if name.endswith(LORA_SUFFIX) else name + LORA_SUFFIX
    folders = [
        Path(settings.models_dir) / "loras",
        Path(settings.storage) / "loras",
        *map(Path, settings.lora_dirs),
    ]
    return any((folder / file_name).is_file() for folder in folders)


def _uuid(ref: Reference) -> uuid.UUID:
    value = _as_uuid(ref.value)
    if value is None:
        raise InvalidJob(f"{ref.field}: must be a UUID, not {ref.value!r}")
    return value


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
