"""Stories written straight into the database (ingest is another engineer's work): chapters, scenes,
characters, emotions, custom fields and small illustrated PNGs in the storage folder."""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from enchant_worker.content_address import content_address, content_hash

WORDS = (
    "the lantern river whispered over stones while the fox and the heron argued about the moon "
    "a storm gathered above the old mill and every window glowed amber as the bells began"
).split()


@dataclass
class SampleStory:
    story_id: uuid.UUID
    user_id: uuid.UUID
    chapter_ids: list[uuid.UUID] = field(default_factory=list)
    scene_ids: list[uuid.UUID] = field(default_factory=list)
    image_ids: list[uuid.UUID] = field(default_factory=list)
    image_paths: list[Path] = field(default_factory=list)
    first_sentences: list[str] = field(default_factory=list)


def png(size: tuple[int, int] = (96, 64), seed: int = 0) -> bytes:
    """A small picture with some structure (gradient and a disc), different per seed."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 4):
        draw.line([(x, 0), (x, size[1])], fill=(x * 255 // size[0], rng.randrange(256), 120))
    r = min(size) // 3
    draw.ellipse(
        [size[0] // 2 - r, size[1] // 2 - r, size[0] // 2 + r, size[1] // 2 + r], fill=(250, 240, 200)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def sentence(rng: random.Random, n: int = 12) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def make_user(conn: psycopg.Connection, email: str | None = None) -> uuid.UUID:
    email = email or f"{uuid.uuid4().hex[:10]}@example.org"
    return conn.execute(
        "INSERT INTO users (email, display_name) VALUES (%s, %s) RETURNING id",
        (email, email.split("@")[0].title()),
    ).fetchone()["id"]


def story_with_scene(
    conn: psycopg.Connection, owner: uuid.UUID, title: str = "A story"
) -> dict[str, uuid.UUID]:
    """The smallest story: one chapter with one scene; their ids by kind (story, chapter, scene)."""
    story = conn.execute(
        "INSERT INTO stories (user_id, title) VALUES (%s, %s) RETURNING id", (owner, title)
    ).fetchone()["id"]
    chapter = conn.execute(
        "INSERT INTO chapters (story_id, chapter_number) VALUES (%s, 1) RETURNING id", (story,)
    ).fetchone()["id"]
    scene = conn.execute("INSERT INTO scenes (chapter_id) VALUES (%s) RETURNING id", (chapter,)).fetchone()[
        "id"
    ]
    return {"story": story, "chapter": chapter, "scene": scene}


def story_with_image(conn: psycopg.Connection, owner: uuid.UUID) -> dict[str, uuid.UUID]:
    """story_with_scene with one image row (no file) in its scene; ids by kind, the image's too."""
    ids = story_with_scene(conn, owner)
    ids["image"] = conn.execute(
        "INSERT INTO images (scene_id, user_id, file_path) VALUES (%s, %s, 'x.png') RETURNING id",
        (ids["scene"], owner),
    ).fetchone()["id"]
    return ids


def make_story(
    conn: psycopg.Connection,
    storage: Path,
    *,
    user_id: uuid.UUID | None = None,
    title: str = "The Lantern River",
    chapters: int = 2,
    scenes_per_chapter: int = 2,
    images: bool = True,
    image_size: tuple[int, int] = (96, 64),
    paragraphs: int = 2,
    seed: int = 1,
) -> SampleStory:
    rng = random.Random(seed)
    user_id = user_id or make_user(conn)
    story_id = conn.execute(
        "INSERT INTO stories (user_id, title, description, genre) VALUES (%s, %s, %s, 'fantasy') RETURNING id",
        (user_id, title, "A river that remembers everyone who crossed it."),
    ).fetchone()["id"]
    sample = SampleStory(story_id, user_id)
    hero = conn.execute(
        "INSERT INTO characters (story_id, name, appearance_description, personality) "
        "VALUES (%s, 'Mira', 'red scarf, silver eyes', 'curious') RETURNING id",
        (story_id,),
    ).fetchone()["id"]
    place = conn.execute(
        "INSERT INTO locations (story_id, name, description) VALUES (%s, 'The Mill', 'old') RETURNING id",
        (story_id,),
    ).fetchone()["id"]
    field_id = conn.execute(
        "INSERT INTO custom_fields (story_id, field_name, field_type, applies_to) "
        "VALUES (%s, 'mood_color', 'text', ARRAY['scene']) RETURNING id",
        (story_id,),
    ).fetchone()["id"]
    previous_scene = None
    for c in range(1, chapters + 1):
        first = f"Chapter {c} opens where the water bends {c} times."
        sample.first_sentences.append(first)
        text = "\n\n".join([first + " " + sentence(rng)] + [sentence(rng, 30) for _ in range(paragraphs - 1)])
        chapter_id = conn.execute(
            "INSERT INTO chapters (story_id, chapter_number, title, content) VALUES (%s, %s, %s, %s) RETURNING id",
            (story_id, c, f"The {rng.choice(WORDS).title()} {rng.choice(WORDS).title()}", text),
        ).fetchone()["id"]
        sample.chapter_ids.append(chapter_id)
        for s in range(1, scenes_per_chapter + 1):
            scene_text = (first + " " if s == 1 else "") + " ".join(sentence(rng, 20) for _ in range(2))
            scene_id = conn.execute(
                "INSERT INTO scenes (chapter_id, scene_number, title, content, summary, emotional_tone, location_id) "
                "VALUES (%s, %s, %s, %s, %s, 'wistful', %s) RETURNING id",
                (chapter_id, s, f"Scene {s}", scene_text, f"Mira at the mill, moment {c}.{s}", place),
            ).fetchone()["id"]
            sample.scene_ids.append(scene_id)
            conn.execute("INSERT INTO scene_characters VALUES (%s, %s)", (scene_id, hero))
            conn.execute(
                "INSERT INTO character_emotions (character_id, scene_id, primary_emotion, emotion_intensity, "
                "secondary_emotions, emotional_triggers) VALUES (%s, %s, 'hope', 0.65, %s, ARRAY['bells'])",
                (hero, scene_id, Jsonb({"fear": 0.2})),
            )
            conn.execute(
                "INSERT INTO custom_field_values (custom_field_id, entity_type, entity_id, field_value) "
                "VALUES (%s, 'scene', %s, %s)",
                (field_id, scene_id, Jsonb("amber")),
            )
            if previous_scene:
                conn.execute(
                    "INSERT INTO emotion_transitions (character_id, from_scene_id, to_scene_id, "
                    "transition_type, transition_cause) VALUES (%s, %s, %s, 'gradual', 'the bells')",
                    (hero, previous_scene, scene_id),
                )
            previous_scene = scene_id
            if images:
                data = png(image_size, seed=seed * 100_000 + c * 1000 + s)
                relative = content_address(data)
                path = storage / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                image_id = conn.execute(
                    "INSERT INTO images (scene_id, user_id, model_name, prompt, seed, parameters, file_path, "
                    "content_hash, width, height) VALUES (%s, %s, 'tiny-sd', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        scene_id,
                        user_id,
                        f"mira at the mill {c}.{s}",
                        c * 100 + s,
                        Jsonb({"steps": 10, "cfg": 7.5, "loras": [{"name": "ink", "strength": 0.8}]}),
                        relative,
                        content_hash(data),
                        image_size[0],
                        image_size[1],
                    ),
                ).fetchone()["id"]
                sample.image_ids.append(image_id)
                sample.image_paths.append(path)
    return sample
