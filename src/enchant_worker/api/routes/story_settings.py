"""A story's settings (feature `scene_extraction`): branches and their character states, LoRA styles
(`story_lora_settings`), custom fields and their values, entity templates (JSON Schema) and entity
metadata validated by them. Reads need read rights on the story, changes write rights."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response, status
from psycopg.types.json import Jsonb

from enchant_worker.api.auth import READ, WRITE
from enchant_worker.api.book_schemas import (
    BranchCreate,
    BranchPublic,
    BranchStateCreate,
    BranchStatePublic,
    BranchUpdate,
    CustomFieldCreate,
    CustomFieldPublic,
    CustomFieldUpdate,
    CustomValuePublic,
    CustomValueSet,
    MetadataSet,
    StoryLoraCreate,
    StoryLoraPublic,
    StoryLoraUpdate,
    TemplateCreate,
    TemplatePublic,
)
from enchant_worker.api.deps import PrincipalDep, StoreDep
from enchant_worker.api.errors import COMMON, Conflict, Forbidden, NotFound, Unprocessable, responses
from enchant_worker.api.routes.books import require, story_of
from enchant_worker.api.store import Store
from enchant_worker.api.versions import SCENE_EXTRACTION
from enchant_worker.db.connection import one
from enchant_worker.sql import q
from enchant_worker.story_analysis_store import RESERVED_PREFIX

router = APIRouter(tags=["story settings"], responses=COMMON)
FEATURE = SCENE_EXTRACTION
METADATA_ENTITY_TYPES = ("story", "chapter", "scene", "character", "location")


# -- branches ------------------------------------------------------------------------------------


@router.get("/stories/{story_id}/branches", response_model=list[BranchPublic])
def list_branches(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The story's "what-if" branches. A branch applies from `branch_point_chapter` on, while active."""
    require(store, principal, "story", story_id, READ)
    return store.conn.execute(q("sa_branches"), {"story_id": story_id}).fetchall()


@router.post("/stories/{story_id}/branches", response_model=BranchPublic, status_code=status.HTTP_201_CREATED)
def create_branch(
    story_id: uuid.UUID, body: BranchCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A new branch from a chapter on (write rights)."""
    require(store, principal, "story", story_id, WRITE)
    return one(
        store.conn.execute(
            q("sa_branch_create"),
            {**body.model_dump(), "story_id": story_id, "created_by": principal.user_id},
        )
    )


@router.patch("/branches/{branch_id}", response_model=BranchPublic)
def update_branch(
    branch_id: uuid.UUID, body: BranchUpdate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Rename, describe, activate or deactivate a branch (an inactive branch changes no picture)."""
    require(store, principal, "branch", branch_id, WRITE)
    changes = body.model_dump(exclude_unset=True)
    return one(
        store.conn.execute(
            q("sa_branch_update"),
            {
                "id": branch_id,
                "branch_name": changes.get("branch_name"),
                "is_active": changes.get("is_active"),
                "set_description": "description" in changes,
                "description": changes.get("description"),
            },
        )
    )


@router.get("/branches/{branch_id}/character-states", response_model=list[BranchStatePublic])
def list_branch_states(
    branch_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    """The branch's character states, by chapter."""
    require(store, principal, "branch", branch_id, READ)
    return store.conn.execute(q("sa_branch_states"), {"branch_id": branch_id}).fetchall()


@router.post(
    "/branches/{branch_id}/character-states",
    response_model=BranchStatePublic,
    status_code=status.HTTP_201_CREATED,
)
def add_branch_state(
    branch_id: uuid.UUID, body: BranchStateCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A character's look (and mood) in this branch from `chapter_number` on; the chapter must be at or
    after the branch point and the character of the same story (422 otherwise)."""
    story_id = require(store, principal, "branch", branch_id, WRITE)
    branch = one(store.conn.execute(q("sa_branch_get"), {"id": branch_id}))
    if body.chapter_number < branch["branch_point_chapter"]:
        raise Unprocessable(
            ("body", "chapter_number"),
            f"chapter_number: the branch starts at chapter "
            f"{branch['branch_point_chapter']}; a state for chapter {body.chapter_number} "
            "would change the shared story before the branch point",
        )
    if story_of(store, "character", body.character_id) != story_id:
        raise Unprocessable(
            ("body", "character_id"), f"character_id: no character {body.character_id} in this branch's story"
        )
    return one(store.conn.execute(q("sa_branch_state_create"), {**body.model_dump(), "branch_id": branch_id}))


# -- LoRA styles ---------------------------------------------------------------------------------


@router.get("/stories/{story_id}/loras", response_model=list[StoryLoraPublic])
def list_story_loras(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The LoRA styles applied to the story's scenes, with strength and `apply_to_scenes`."""
    require(store, principal, "story", story_id, READ)
    return store.conn.execute(q("sa_story_loras"), {"story_id": story_id}).fetchall()


@router.post("/stories/{story_id}/loras", response_model=StoryLoraPublic, status_code=status.HTTP_201_CREATED)
def add_story_lora(
    story_id: uuid.UUID, body: StoryLoraCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Apply a LoRA the caller may use (theirs or public) to all scenes (`["all"]`) or to given scene
    ids of the story; the strength must lie in the LoRA's `strength_range`."""
    require(store, principal, "story", story_id, WRITE)
    lora = store.conn.execute(
        q("sa_lora_usable"),
        {"id": body.lora_model_id, "user_id": principal.user_id, "admin": principal.is_admin},
    ).fetchone()
    if lora is None:
        raise Unprocessable(
            ("body", "lora_model_id"),
            f"lora_model_id: no LoRA {body.lora_model_id} is available to this key (yours or public)",
        )
    _check_strength(lora, body.strength)
    scenes = _check_scenes(store, story_id, body.apply_to_scenes)
    setting = one(
        store.conn.execute(
            q("sa_story_lora_create"),
            {
                "story_id": story_id,
                "lora_model_id": body.lora_model_id,
                "strength": body.strength,
                "apply_to_scenes": scenes,
            },
        )
    )
    return one(store.conn.execute(q("sa_story_lora_get"), {"id": setting["id"], "story_id": story_id}))


@router.patch("/stories/{story_id}/loras/{setting_id}", response_model=StoryLoraPublic)
def update_story_lora(
    story_id: uuid.UUID,
    setting_id: uuid.UUID,
    body: StoryLoraUpdate,
    store: StoreDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Change a style's strength or the scenes it applies to."""
    require(store, principal, "story", story_id, WRITE)
    current = store.conn.execute(q("sa_story_lora_get"), {"id": setting_id, "story_id": story_id}).fetchone()
    if current is None:
        raise NotFound(f"no LoRA style {setting_id} on story {story_id}")
    if body.strength is not None:
        lora = one(
            store.conn.execute(
                q("sa_lora_usable"), {"id": current["lora_model_id"], "user_id": None, "admin": True}
            )
        )
        _check_strength(lora, body.strength)
    scenes = (
        _check_scenes(store, story_id, body.apply_to_scenes) if body.apply_to_scenes is not None else None
    )
    store.conn.execute(
        q("sa_story_lora_update"),
        {"id": setting_id, "story_id": story_id, "strength": body.strength, "apply_to_scenes": scenes},
    )
    return one(store.conn.execute(q("sa_story_lora_get"), {"id": setting_id, "story_id": story_id}))


@router.delete(
    "/stories/{story_id}/loras/{setting_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
def remove_story_lora(
    story_id: uuid.UUID, setting_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> Response:
    """Stop applying a LoRA style to the story."""
    require(store, principal, "story", story_id, WRITE)
    if (
        store.conn.execute(q("sa_story_lora_delete"), {"id": setting_id, "story_id": story_id}).fetchone()
        is None
    ):
        raise NotFound(f"no LoRA style {setting_id} on story {story_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _check_strength(lora: dict[str, Any], strength: float) -> None:
    bounds = {"min": 0.0, "max": 1.0, **(lora["strength_range"] or {})}
    lo, hi = float(bounds["min"]), float(bounds["max"])
    if not lo <= strength <= hi:
        raise Unprocessable(
            ("body", "strength"),
            f"strength: must be from {lo:g} to {hi:g} for LoRA "
            f"{lora['name']!r} (its strength_range), not {strength:g}",
        )


def _check_scenes(store: Store, story_id: uuid.UUID, scenes: list[str]) -> list[str]:
    if scenes == ["all"]:
        return scenes
    ids = []
    for i, value in enumerate(scenes):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            raise Unprocessable(
                ("body", "apply_to_scenes", i),
                f"apply_to_scenes[{i}]: {value!r} is neither 'all' (alone) nor a scene id",
            ) from None
    found = {r["id"] for r in store.conn.execute(q("sa_story_scene_ids"), {"story_id": story_id, "ids": ids})}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Unprocessable(
            ("body", "apply_to_scenes"), f"apply_to_scenes: not scenes of this story: {', '.join(missing)}"
        )
    return [str(i) for i in ids]


# -- custom fields -------------------------------------------------------------------------------


def check_value(field: dict[str, Any], value: Any, where: str) -> None:
    """A value must match its field's type: 422 naming the field otherwise."""
    kind = field["field_type"]
    ok: Callable[[Any], bool] = {
        "text": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "json": lambda v: True,
    }.get(kind, lambda v: True)
    if value is not None and not ok(value):
        raise Unprocessable(
            ("body", where),
            f"{where}: custom field {field['field_name']!r} is of type {kind}; "
            f"got {type(value).__name__} {str(value)[:60]!r}",
        )


@router.get("/stories/{story_id}/custom-fields", response_model=list[CustomFieldPublic])
def list_custom_fields(story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The story's custom fields. `metadata.prompt: true` puts a field's values into image prompts."""
    require(store, principal, "story", story_id, READ)
    return store.conn.execute(q("sa_custom_fields"), {"story_id": story_id}).fetchall()


@router.post(
    "/stories/{story_id}/custom-fields",
    response_model=CustomFieldPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
)
def create_custom_field(
    story_id: uuid.UUID, body: CustomFieldCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A field of type text, number, boolean, json or array on characters, locations and/or scenes; the
    default must match the type (422). One field name per story (409)."""
    require(store, principal, "story", story_id, WRITE)
    field = body.model_dump()
    check_value(field, body.default_value, "default_value")
    _check_field_metadata(body.metadata)
    import psycopg

    try:
        with store.transaction():
            return one(
                store.conn.execute(
                    q("sa_custom_field_create"),
                    {
                        **field,
                        "story_id": story_id,
                        "default_value": Jsonb(body.default_value)
                        if body.default_value is not None
                        else None,
                        "applies_to": list(body.applies_to),
                        "metadata": Jsonb(body.metadata),
                    },
                )
            )
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"story {story_id} has a custom field named {body.field_name!r} already") from None


@router.patch("/custom-fields/{field_id}", response_model=CustomFieldPublic)
def update_custom_field(
    field_id: uuid.UUID, body: CustomFieldUpdate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Rename a field, change its default, entities or metadata (its type stays)."""
    require(store, principal, "custom_field", field_id, WRITE)
    field = one(store.conn.execute(q("sa_custom_field_get"), {"id": field_id}))
    changes = body.model_dump(exclude_unset=True)
    if "default_value" in changes:
        check_value(field, changes["default_value"], "default_value")
    if changes.get("metadata") is not None:
        _check_field_metadata(changes["metadata"])
    default = changes.get("default_value")
    return one(
        store.conn.execute(
            q("sa_custom_field_update"),
            {
                "id": field_id,
                "field_name": changes.get("field_name"),
                "set_default": "default_value" in changes,
                "default_value": Jsonb(default) if default is not None else None,
                "applies_to": changes.get("applies_to"),
                "metadata": Jsonb(changes["metadata"]) if changes.get("metadata") is not None else None,
            },
        )
    )


@router.delete("/custom-fields/{field_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_custom_field(field_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Response:
    """Delete a field and all its values."""
    require(store, principal, "custom_field", field_id, WRITE)
    store.conn.execute(q("sa_custom_field_delete"), {"id": field_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/custom-fields/{field_id}/values", response_model=CustomValuePublic)
def set_custom_value(
    field_id: uuid.UUID, body: CustomValueSet, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Set the field's value on a character, location or scene of the same story. The value must match
    the field's type (422 naming the field) and the field must apply to that kind of entity."""
    story_id = require(store, principal, "custom_field", field_id, WRITE)
    field = one(store.conn.execute(q("sa_custom_field_get"), {"id": field_id}))
    if body.entity_type + "s" not in field["applies_to"]:
        raise Unprocessable(
            ("body", "entity_type"),
            f"entity_type: custom field {field['field_name']!r} applies "
            f"to {', '.join(field['applies_to'])}, not {body.entity_type}s",
        )
    if story_of(store, body.entity_type, body.entity_id) != story_id:
        raise Unprocessable(
            ("body", "entity_id"), f"entity_id: no {body.entity_type} {body.entity_id} in this field's story"
        )
    check_value(field, body.value, "value")
    return one(
        store.conn.execute(
            q("sa_custom_value_set"),
            {
                "field_id": field_id,
                "entity_type": body.entity_type,
                "entity_id": body.entity_id,
                "value": Jsonb(body.value),
            },
        )
    )


@router.delete(
    "/custom-fields/{field_id}/values/{entity_type}/{entity_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def delete_custom_value(
    field_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> Response:
    """Remove a value (the field's default applies again)."""
    require(store, principal, "custom_field", field_id, WRITE)
    if (
        store.conn.execute(
            q("sa_custom_value_delete"),
            {"field_id": field_id, "entity_type": entity_type, "entity_id": entity_id},
        ).fetchone()
        is None
    ):
        raise NotFound(f"no value of field {field_id} on {entity_type} {entity_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _check_field_metadata(metadata: dict[str, Any]) -> None:
    if "prompt" in metadata and not isinstance(metadata["prompt"], bool):
        raise Unprocessable(("body", "metadata", "prompt"), "metadata.prompt: must be true or false")


# -- templates and entity metadata ---------------------------------------------------------------


@router.get("/stories/{story_id}/templates", response_model=list[TemplatePublic])
def list_templates(
    story_id: uuid.UUID, store: StoreDep, principal: PrincipalDep, entity_type: str | None = None
) -> list[dict[str, Any]]:
    """The entity templates that apply to the story: its own and the global ones."""
    require(store, principal, "story", story_id, READ)
    return store.conn.execute(
        q("sa_templates"), {"story_id": story_id, "entity_type": entity_type}
    ).fetchall()


@router.post(
    "/stories/{story_id}/templates", response_model=TemplatePublic, status_code=status.HTTP_201_CREATED
)
def create_template(
    story_id: uuid.UUID, body: TemplateCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A template for one entity type of the story: `template_schema` must be a valid JSON Schema (422
    with the schema error otherwise); from then on, that entity type's metadata must match it."""
    require(store, principal, "story", story_id, WRITE)
    _check_schema(body.template_schema)
    return one(
        store.conn.execute(
            q("sa_template_create"),
            {
                "story_id": story_id,
                "entity_type": body.entity_type,
                "template_name": body.template_name,
                "template_schema": Jsonb(body.template_schema),
            },
        )
    )


@router.post("/templates", response_model=TemplatePublic, status_code=status.HTTP_201_CREATED)
def create_global_template(body: TemplateCreate, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """A template every story's entities of that type must match (admin keys only)."""
    if not principal.is_admin:
        raise Forbidden("only an admin key may create a global template; use /stories/{id}/templates")
    _check_schema(body.template_schema)
    return one(
        store.conn.execute(
            q("sa_template_create"),
            {
                "story_id": None,
                "entity_type": body.entity_type,
                "template_name": body.template_name,
                "template_schema": Jsonb(body.template_schema),
            },
        )
    )


@router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_template(template_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Response:
    """Delete a story's template (write rights) or a global one (admin keys)."""
    story_id = story_of(store, "template", template_id)
    if story_id is None:
        exists = store.conn.execute(
            "SELECT 1 FROM entity_templates WHERE id = %(id)s", {"id": template_id}
        ).fetchone()
        if exists is None:
            raise NotFound(f"no template with id {template_id}")
        if not principal.is_admin:
            raise Forbidden("only an admin key may delete a global template")
    else:
        require(store, principal, "template", template_id, WRITE)
    store.conn.execute(q("sa_template_delete"), {"id": template_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/entities/{entity_type}/{entity_id}/metadata", response_model=dict[str, Any])
def get_metadata(
    entity_type: str, entity_id: uuid.UUID, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """An entity's metadata as one object (key → value)."""
    _entity_kind(entity_type)
    require(store, principal, entity_type, entity_id, READ)
    return _metadata(store, entity_type, entity_id)


@router.put("/entities/{entity_type}/{entity_id}/metadata/{key}", response_model=dict[str, Any])
def set_metadata(
    entity_type: str,
    entity_id: uuid.UUID,
    key: str,
    body: MetadataSet,
    store: StoreDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Set one key of an entity's metadata. The whole metadata object must still match every template
    of that entity type (the story's and the global ones): 422 naming the failing path otherwise."""
    _entity_kind(entity_type)
    story_id = require(store, principal, entity_type, entity_id, WRITE)
    _writable_key(key)
    with store.transaction():
        merged = {**_metadata(store, entity_type, entity_id), key: body.value}
        _validate_metadata(store, story_id, entity_type, merged)
        store.conn.execute(
            q("sa_metadata_set"),
            {"entity_type": entity_type, "entity_id": entity_id, "key": key, "value": Jsonb(body.value)},
        )
    return merged


@router.delete("/entities/{entity_type}/{entity_id}/metadata/{key}", response_model=dict[str, Any])
def delete_metadata(
    entity_type: str, entity_id: uuid.UUID, key: str, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Remove one key (refused with 422 when a template requires it)."""
    _entity_kind(entity_type)
    story_id = require(store, principal, entity_type, entity_id, WRITE)
    _writable_key(key)
    with store.transaction():
        merged = _metadata(store, entity_type, entity_id)
        if key not in merged:
            raise NotFound(f"{entity_type} {entity_id} has no metadata key {key!r}")
        del merged[key]
        _validate_metadata(store, story_id, entity_type, merged)
        store.conn.execute(
            q("sa_metadata_delete"), {"entity_type": entity_type, "entity_id": entity_id, "key": key}
        )
    return merged


def _entity_kind(entity_type: str) -> None:
    if entity_type not in METADATA_ENTITY_TYPES:
        raise NotFound(
            f"entity type {entity_type!r} has no metadata here; one of {', '.join(METADATA_ENTITY_TYPES)}"
        )


def _metadata(store: Store, entity_type: str, entity_id: uuid.UUID) -> dict[str, Any]:
    """The entity's own metadata (without the keys analyze_story writes: they have routes of their own)."""
    rows = store.conn.execute(
        q("sa_metadata_of"), {"entity_type": entity_type, "entity_id": entity_id}
    ).fetchall()
    return {
        r["metadata_key"]: r["metadata_value"]
        for r in rows
        if not r["metadata_key"].startswith(RESERVED_PREFIX)
    }


def _writable_key(key: str) -> None:
    if not 1 <= len(key) <= 200:
        raise Unprocessable(("path", "key"), "key: 1 to 200 characters")
    if key.startswith(RESERVED_PREFIX):
        raise Unprocessable(
            ("path", "key"),
            f"key: {RESERVED_PREFIX}* keys are written by analyze_story only "
            "(read them at /stories/{id}/insights and /scenes/{id}/quality)",
        )


def _check_schema(schema: dict[str, Any]) -> None:
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise Unprocessable(
            ("body", "template_schema"), f"template_schema: not a valid JSON Schema at {where}: {exc.message}"
        ) from None


def _validate_metadata(store: Store, story_id: uuid.UUID, entity_type: str, metadata: dict[str, Any]) -> None:
    from jsonschema.validators import validator_for

    templates = store.conn.execute(
        q("sa_templates"), {"story_id": story_id, "entity_type": entity_type}
    ).fetchall()
    for template in templates:
        schema = template["template_schema"]
        validator = validator_for(schema)(schema)
        error = next(iter(sorted(validator.iter_errors(metadata), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(p) for p in error.path) or "(root)"
            raise Unprocessable(
                ("body", "value"),
                f"metadata of {entity_type} does not match template "
                f"{template['template_name']!r} at {where}: {error.message}",
            )
