"""What a `generate_image` job reads from the database: the scene as the prompt builder sees it, the
preset, and the LoRA files (the job's own and the story's styles) resolved to local paths.

The prompt builder (`generation.prompts`) stays pure: this module turns rows into its dataclasses.
The story's metadata (owner, style preference) and the user's preferences are read through the TTL
caches (`enchant_worker.cache`) when a cache is given, so jobs share them with each other and the API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enchant_worker.cache import Cache, load_story_metadata, load_user_preferences
from enchant_worker.errors import InvalidJob
from enchant_worker.generation.prompts import (
    BranchCharacterState,
    Character,
    CharacterEmotion,
    Detail,
    EmotionTransition,
    Location,
    Preset,
    Scene,
)
from enchant_worker.generation.styles import (
    DEFAULT_STRENGTH_RANGE,
    LoraModel,
    StoryLoraSetting,
    clamp_strength,
    story_loras_for_scene,
)
from enchant_worker.sql import q

LORA_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")  # a file name, never a path
LORA_SUFFIX = ".safetensors"
DEFAULT_JOB_LORA_STRENGTH = 1.0


@dataclass(frozen=True)
class JobLora:
    """A LoRA as the job names it: a lora_models id, or a name (a lora_models row, else a file)."""

    index: int
    name: str | None = None
    lora_model_id: uuid.UUID | None = None
    strength: float | None = None

    @property
    def field(self) -> str:
        return f"loras[{self.index}]"


@dataclass(frozen=True)
class ResolvedLora:
    name: str
    path: Path
    strength: float
    source: str  # "job.loras[0]", "story_lora_settings:<id>"
    trigger_words: tuple[str, ...] = ()
    lora_model_id: str | None = None
    note: str | None = None

    @property
    def file_stem(self) -> str:
        """The name outside tools know this LoRA by: its file's stem (what AUTOMATIC1111 lists and
        `<lora:NAME:W>` resolves; the stem of the file the API's download gives)."""
        return Path(self.path).name.removesuffix(".safetensors")


@dataclass(frozen=True)
class SceneRecord:
    scene: Scene
    story_id: str
    chapter_number: int
    emotional_tone: str | None
    style_preference: str | None
    owner_id: uuid.UUID | None
    owner_tier: str | None


@dataclass(frozen=True)
class PresetRecord:
    preset: Preset
    provider: str | None
    model_name: str | None
    parameters: Mapping[str, Any] = field(default_factory=dict)


# -- scene ---------------------------------------------------------------------------------------


def load_scene(
    conn, scene_id: uuid.UUID, branch_id: uuid.UUID | None, cache: Cache | None = None
) -> SceneRecord:
    """The scene with its characters (branch look, emotion) and location; InvalidJob when unknown.
    The story's owner and style preference come from `cache` (read from the database without one)."""
    row = conn.execute(q("generation_scene"), {"scene_id": scene_id}).fetchone()
    if row is None:
        raise InvalidJob(f"scene_id: no scene has id {scene_id}")
    story = story_metadata(conn, row["story_id"], cache)
    if story is None:  # deleted since the scene was read
        raise InvalidJob(f"scene_id: no scene has id {scene_id}")
    owner_id = _as_uuid(story["user_id"]) if story["user_id"] is not None else None
    if branch_id is not None:
        branch = conn.execute(q("generation_branch"), {"id": branch_id}).fetchone()
        if branch is None:
            raise InvalidJob(f"branch_id: no story branch has id {branch_id}")
        if branch["parent_story_id"] != row["story_id"]:
            raise InvalidJob(f"branch_id: branch {branch_id} belongs to another story than scene {scene_id}")
        if branch["is_active"] is False:
            raise InvalidJob(
                f"branch_id: branch {branch['branch_name']!r} is inactive; activate it "
                "(PATCH /branches/{id}) or leave branch_id out"
            )
        if row["chapter_number"] < branch["branch_point_chapter"]:
            branch_id = None  # before the branch point the story is shared: the branch changes nothing
    rows = conn.execute(
        q("generation_scene_characters"),
        {"scene_id": scene_id, "branch_id": branch_id, "chapter_number": row["chapter_number"]},
    ).fetchall()
    details = prompt_details(conn, row["chapter_id"], row["id"], [r["id"] for r in rows], row["location_id"])
    location = (
        Location(
            row["location_name"],
            row["location_description"],
            str(row["location_id"]),
            details.get(("location", str(row["location_id"])), ()),
        )
        if row["location_id"]
        else None
    )
    scene = Scene(
        id=str(row["id"]),
        text=row["content"],
        summary=row["summary"],
        characters=tuple(_character(r, details.get(("character", str(r["id"])), ())) for r in rows),
        location=location,
        details=details.get(("scene", str(row["id"])), ()),
    )
    return SceneRecord(
        scene,
        str(row["story_id"]),
        row["chapter_number"],
        row["emotional_tone"],
        story["style_preference"],
        owner_id,
        user_tier(conn, owner_id),
    )


def story_metadata(conn, story_id: Any, cache: Cache | None) -> Mapping[str, Any] | None:
    """The story's metadata (get_story_metadata's shape), through the story metadata cache."""
    if cache is None:
        return load_story_metadata(conn, story_id)
    return cache.story_metadata(str(story_id), lambda: load_story_metadata(conn, story_id))


def user_preferences(conn, user_id: Any, cache: Cache | None) -> Mapping[str, Any]:
    """The user's preferences through the user preferences cache ({} for no user or no object)."""
    if cache is None:
        preferences = load_user_preferences(conn, user_id)
    else:
        preferences = cache.user_preferences(str(user_id), lambda: load_user_preferences(conn, user_id))
    return preferences if isinstance(preferences, dict) else {}


def user_tier(conn, user_id: uuid.UUID | None) -> str | None:
    """The user's subscription tier (not cached: it is not part of the cached shapes); None for no user."""
    if user_id is None:
        return None
    row = conn.execute(q("generation_user"), {"id": user_id}).fetchone()
    return None if row is None else row["subscription_tier"]


def prompt_details(
    conn, chapter_id, scene_id, character_ids, location_id
) -> dict[tuple[str, str], tuple[Detail, ...]]:
    """Custom field values marked `prompt: true` of the scene, its characters and its location."""
    entities = [("scene", scene_id), *(("character", c) for c in character_ids)]
    if location_id is not None:
        entities.append(("location", location_id))
    rows = conn.execute(
        q("generation_prompt_details"),
        {
            "chapter_id": chapter_id,
            "entity_types": [e[0] for e in entities],
            "entity_ids": [e[1] for e in entities],
        },
    ).fetchall()
    found: dict[tuple[str, str], list[Detail]] = {}
    for r in rows:
        value = r["value"]
        text = (
            ", ".join(map(str, value))
            if isinstance(value, list)
            else (("yes" if value else "no") if isinstance(value, bool) else str(value))
        )
        found.setdefault((r["entity_type"], str(r["entity_id"])), []).append(
            Detail(r["field_name"], text, str(r["field_id"]))
        )
    return {k: tuple(v) for k, v in found.items()}


def _character(row: Mapping[str, Any], details: tuple[Detail, ...] = ()) -> Character:
    emotion = None
    if row["emotion_id"] is not None:
        intensity = row["emotion_intensity"]
        emotion = CharacterEmotion(
            primary_emotion=row["primary_emotion"],
            emotion_intensity=None if intensity is None else float(intensity),
            secondary_emotions={
                k: float(v)
                for k, v in (row["secondary_emotions"] or {}).items()
                if isinstance(v, int | float)
            },
            facial_expression_notes=row["facial_expression_notes"],
            body_language_notes=row["body_language_notes"],
            id=str(row["emotion_id"]),
        )
    state = None
    if row["state_id"] is not None:
        state = BranchCharacterState(
            branch_id=str(row["state_branch_id"]),
            chapter_number=row["state_chapter_number"],
            appearance_description=row["state_appearance"],
            emotional_state=row["state_emotional_state"],
            id=str(row["state_id"]),
        )
    transition = None
    if row["transition_id"] is not None:
        transition = EmotionTransition(
            row["transition_type"], row["from_emotion"], row["transition_cause"], str(row["transition_id"])
        )
    return Character(
        row["name"], row["appearance_description"], emotion, state, str(row["id"]), transition, details
    )


# -- preset --------------------------------------------------------------------------------------


def load_preset(conn, ref: str, user_id: uuid.UUID | None) -> PresetRecord:
    """A preset by id or name; InvalidJob naming `preset` when there is none the user may use."""
    preset_id = _as_uuid(ref)
    row = conn.execute(q("generation_preset"), {"id": preset_id, "name": ref, "user_id": user_id}).fetchone()
    if row is None:
        raise InvalidJob(f"preset: no generation preset {ref!r} (by id or name) is available to this user")
    parameters = dict(row["parameters"] or {})
    negative = parameters.pop("negative_prompt", None)
    preset = Preset(
        name=row["name"],
        style_modifiers=tuple(row["style_modifiers"] or ()),
        negative_prompt=negative if isinstance(negative, str) else None,
        id=str(row["id"]),
    )
    return PresetRecord(preset, row["provider"], row["model_name"], parameters)


# -- LoRAs ---------------------------------------------------------------------------------------


def resolve_loras(
    conn,
    job_loras: Sequence[JobLora],
    record: SceneRecord | None,
    user_id: uuid.UUID | None,
    storage: Callable[[str], Path],
    lora_folders: Sequence[Path],
    story_styles: bool = True,
) -> tuple[list[ResolvedLora], list[str]]:
    """The job's LoRAs, then the story's styles for the scene (strengths clamped into their
    `strength_range`; a style the job names itself takes the job's strength). Returns warnings too."""
    chosen: list[ResolvedLora] = [
        _resolve_job_lora(conn, lora, user_id, storage, lora_folders) for lora in job_loras
    ]
    warnings: list[str] = []
    if record is None or not story_styles:
        return chosen, warnings
    rows = conn.execute(q("generation_story_loras"), {"story_id": record.story_id}).fetchall()
    settings = [
        StoryLoraSetting(
            lora=_lora_model(r, id_key="lora_id"),
            strength=float(r["strength"]) if r["strength"] is not None else 0.8,
            apply_to_scenes=tuple(r["apply_to_scenes"] or ("all",)),
            id=str(r["id"]),
        )
        for r in rows
    ]
    styles, warnings = story_loras_for_scene(settings, record.scene.id)
    named = {c.lora_model_id for c in chosen if c.lora_model_id}
    for style in styles:
        if style.lora.id in named:
            continue  # the job set this LoRA's strength itself
        chosen.append(
            ResolvedLora(
                name=style.lora.name,
                path=_lora_path(style.lora.model_file_url, style.lora.name, "story style", storage),
                strength=style.strength,
                source=style.source,
                trigger_words=tuple(style.lora.trigger_words),
                lora_model_id=style.lora.id,
                note=style.note,
            )
        )
    return chosen, warnings


def _resolve_job_lora(
    conn, lora: JobLora, user_id: uuid.UUID | None, storage: Callable[[str], Path], folders: Sequence[Path]
) -> ResolvedLora:
    row = conn.execute(
        q("generation_lora"), {"id": lora.lora_model_id, "name": lora.name, "user_id": user_id}
    ).fetchone()
    if row is None and lora.lora_model_id is not None:
        raise InvalidJob(
            f"{lora.field}.lora_model_id: no LoRA {lora.lora_model_id} is available to this user"
        )
    if row is None:
        return _file_lora(lora, folders)
    model = _lora_model(row)
    if model.status != "ready":
        raise InvalidJob(f"{lora.field}: LoRA {model.name!r} is not ready (status {model.status})")
    bounds = {**DEFAULT_STRENGTH_RANGE, **(model.strength_range or {})}
    lo, hi = float(bounds["min"]), float(bounds["max"])
    if lora.strength is None:
        strength = clamp_strength(DEFAULT_JOB_LORA_STRENGTH, bounds)
    elif not lo <= lora.strength <= hi:
        raise InvalidJob(
            f"{lora.field}.strength: must be from {lo:g} to {hi:g} for LoRA {model.name!r} "
            f"(its strength_range), not {lora.strength:g}"
        )
    else:
        strength = lora.strength
    return ResolvedLora(
        name=model.name,
        path=_lora_path(model.model_file_url, model.name, lora.field, storage),
        strength=strength,
        source=f"job.{lora.field}",
        trigger_words=tuple(model.trigger_words),
        lora_model_id=model.id,
    )


def _file_lora(lora: JobLora, folders: Sequence[Path]) -> ResolvedLora:
    """A LoRA named by file: `<name>.safetensors` in one of the LoRA folders."""
    name = lora.name or ""
    if not LORA_FILE_NAME.match(name):
        raise InvalidJob(f"{lora.field}.name: {name!r} is not a LoRA name (letters, digits, '_.+-')")
    file_name = name if name.endswith(LORA_SUFFIX) else name + LORA_SUFFIX
    for folder in folders:
        candidate = Path(folder) / file_name
        if candidate.is_file():
            strength = DEFAULT_JOB_LORA_STRENGTH if lora.strength is None else lora.strength
            return ResolvedLora(name.removesuffix(LORA_SUFFIX), candidate, strength, f"job.{lora.field}")
    searched = ", ".join(str(f) for f in folders) or "none configured"
    raise InvalidJob(
        f"{lora.field}.name: unknown LoRA {name!r}: no lora_models row has that name and no file "
        f"{file_name} is in the LoRA folders ({searched})"
    )


def _lora_model(row: Mapping[str, Any], id_key: str = "id") -> LoraModel:
    return LoraModel(
        id=str(row[id_key]),
        name=row["name"],
        model_file_url=row["model_file_url"],
        trigger_words=tuple(row["trigger_words"] or ()),
        strength_range=dict(row["strength_range"] or DEFAULT_STRENGTH_RANGE),
        status=row["status"] or "training",
    )


def _lora_path(url: str, name: str, where: str, storage: Callable[[str], Path]) -> Path:
    """A lora_models.model_file_url as a local path: relative to storage (`storage(key)` gives the file,
    copied from object storage when need be), absolute, or file://.
    (Whether the file may be loaded — inside the allowed folders, safetensors — is checked on load.)"""
    if re.match(r"^[a-z][a-z0-9+.-]*://", url) and not url.startswith("file://"):
        raise InvalidJob(
            f"{where}: LoRA {name!r} is at {url}; only local files are loaded (nothing is downloaded)"
        )
    path = Path(url.removeprefix("file://")).expanduser()
    if path.is_absolute():
        return path
    try:
        return storage(path.as_posix())
    except (ValueError, FileNotFoundError) as exc:
        raise InvalidJob(f"{where}: the file of LoRA {name!r} cannot be used: {exc}") from None


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def lora_folders(settings) -> list[Path]:
    """Where LoRAs named by file are looked for, in order."""
    return [
        Path(settings.models_dir) / "loras",
        Path(settings.storage) / "loras",
        *map(Path, settings.lora_dirs),
    ]
