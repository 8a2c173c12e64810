"""Job specs: each job type's metadata as a pydantic model, torch-free, shared by the API, the CLI and
the worker.

A field that names a row or a file says so with `Ref`:

    class ExtractScenesSpec(JobSpec):
        chapter_id: Annotated[uuid.UUID, Ref("chapter", WRITE)]

`references(spec)` lists every such value with its field path, so one authorization step
(`enchant_worker.intake`) can check the job's user against each of them, at enqueue and again when the
worker runs the job. `parse(spec_class, metadata)` turns any validation failure into `InvalidJob` naming
the field, the allowed values and what was received.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from enchant_worker.errors import InvalidJob

READ, WRITE = "read", "write"
# Seeing a story as a reader: READ on it, or the story is published in the community (analytics events
# of readers only; a job never gets this right, so nobody works on another's published story).
VIEW = "view"

# Rows that belong to a story: rights on them are rights on their story.
STORY_KINDS = frozenset({"story", "chapter", "scene", "character", "location", "branch"})
# What a reference may point at; `enchant_worker.intake.references` knows how to check each kind.
REFERENCE_KINDS = STORY_KINDS | frozenset(
    {
        "image",  # the image's owner, or rights on its scene's story
        "preset",  # generation preset by id or name: the owner's, or a public one
        "lora",  # LoRA by id or name, to apply: the owner's, or a public one
        "lora_training",  # the LoRA being (re)trained: its owner only
        "upload",  # a file the caller uploaded (upload id or storage-relative path under their uploads)
        "training_source",  # an upload, or for admins and the CLI a folder under ENCHANT_TRAINING_DIRS
        "model",  # a model named in configs/models.toml
        "base_model",  # a model to train on: configured, or a folder under ENCHANT_MODELS_DIR (admins: a path)
        "user",  # a user id: the caller's own (admins: any)
        "text_model",  # a text model of configs/models.toml (kind = "text"); default when None
    }
)


@dataclass(frozen=True)
class Ref:
    """Marks a field (in `Annotated[...]`) as naming a row or file of `kind`, needing `right` on it."""

    kind: str
    right: str = READ

    def __post_init__(self) -> None:
        if self.kind not in REFERENCE_KINDS:
            raise ValueError(
                f"unknown reference kind {self.kind!r}; known: {', '.join(sorted(REFERENCE_KINDS))}"
            )
        if self.right not in (READ, WRITE, VIEW):
            raise ValueError(f"right must be {READ!r}, {WRITE!r} or {VIEW!r}")


@dataclass(frozen=True)
class Reference:
    """One referenced value found in a spec."""

    field: str  # dotted path as the caller wrote it: 'loras[1].lora_model_id'
    kind: str
    right: str
    value: Any


class JobSpec(BaseModel):
    """Base of every job type's spec: unknown fields and non-finite numbers are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def usage(self) -> dict[str, int]:
        """What this job counts against its user's daily quotas (`images`, `trainings`)."""
        return {}

    def entity(self) -> tuple[str, uuid.UUID] | None:
        """The row the job is about (`entity_type`, `entity_id`), when its metadata names one."""
        return None

    def implied_references(self) -> list[Reference]:
        """What the job will use without naming it (a default model, say): checked like its references,
        with `value` None for "the configured default"."""
        return []


def references(spec: BaseModel, prefix: str = "") -> Iterator[Reference]:
    """Every `Ref`-marked value in `spec`, nested models and lists included (None values skipped)."""
    for name, info in type(spec).model_fields.items():
        value = getattr(spec, name)
        path = f"{prefix}{info.alias or name}"
        marks = [m for m in info.metadata if isinstance(m, Ref)]
        for mark in marks:
            for item, item_path in _flatten(value, path):
                if item is not None:
                    yield Reference(item_path, mark.kind, mark.right, item)
        if not marks:
            for item, item_path in _flatten(value, path):
                if isinstance(item, BaseModel):
                    yield from references(item, item_path + ".")


def _flatten(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield item, f"{path}[{i}]"
    else:
        yield value, path


S = TypeVar("S", bound=BaseModel)


def parse(spec_class: type[S], metadata: Any) -> S:
    """`metadata` as a `spec_class`; `InvalidJob` naming each bad field otherwise."""
    if not isinstance(metadata, dict):
        raise InvalidJob("metadata: must be a JSON object")
    try:
        return spec_class.model_validate(metadata)
    except ValidationError as exc:
        raise InvalidJob("; ".join(explain(spec_class, e) for e in exc.errors())) from None


def explain(spec_class: type[BaseModel], error: Any) -> str:
    """One pydantic error as 'field: what is wrong, got X', with the field's allowed range."""
    loc = error["loc"]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "metadata"
    got = error.get("input")
    kind = error["type"]
    field = spec_class.model_fields.get(str(loc[0])) if loc else None
    if kind == "extra_forbidden":
        return f"{where}: unknown field; allowed fields are {', '.join(sorted(spec_class.model_fields))}"
    if kind == "missing":
        return f"{where}: required"
    if kind == "literal_error":
        return f"{where}: {error['msg'].replace('Input should be', 'must be')}, got {_short(got)}"
    allowed = _describe_range(field) if field is not None and len(loc) == 1 and kind in _RANGE_ERRORS else ""
    if allowed:
        return f"{where}: must be {allowed}, got {_short(got)}"
    message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "value_error":  # our own validators' messages say what they got
        return f"{where}: {message}"
    return f"{where}: {message} (got {_short(got)})"


_RANGE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
    }
)


def _describe_range(spec_field: Any) -> str:
    """'between 1e-06 and 0.01', 'a list or text of length 1 to 100', ... from a field's constraints."""
    c: dict[str, Any] = {}
    for meta in spec_field.metadata:
        for key in ("ge", "gt", "le", "lt", "multiple_of", "min_length", "max_length"):
            if getattr(meta, key, None) is not None:
                c[key] = getattr(meta, key)
    if "min_length" in c or "max_length" in c:
        return f"a list or text of length {c.get('min_length', 0)} to {c.get('max_length', 'any')}"
    low = f"above {c['gt']}" if "gt" in c else (f"at least {c['ge']}" if "ge" in c else None)
    high = f"below {c['lt']}" if "lt" in c else (f"at most {c['le']}" if "le" in c else None)
    parts = [f"between {c['ge']} and {c['le']}"] if "ge" in c and "le" in c else [p for p in (low, high) if p]
    if "multiple_of" in c:
        parts.append(f"a multiple of {c['multiple_of']}")
    return ", ".join(parts)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
