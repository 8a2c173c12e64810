"""The llm analyzer on a tiny random causal LM built here: through the queue, its constrained output
parses and is stored; a missing model or one that is not a causal LM is refused at enqueue."""

from __future__ import annotations

import json

import pytest

from enchant_worker import books
from enchant_worker.config import get_settings
from enchant_worker.domain.jobs import NewJob
from enchant_worker.errors import InvalidJob
from enchant_worker.handlers.extract_scenes import HANDLER
from enchant_worker.queue import JobQueue
from enchant_worker.text.ingest import read_book
from tests.support.workers import WorkerThreads

TEXT = "Chapter 1\n\nMara Quinn climbed the tower, afraid of the storm. Tobin waited below, terrified."


@pytest.fixture(scope="session")
def text_models_dir(tmp_path_factory):
    from enchant_worker.text.tiny_lm import build_tiny_text_model

    folder = tmp_path_factory.mktemp("text-models")
    build_tiny_text_model(folder / "tiny-text")
    (folder / "bert").mkdir()
    (folder / "bert" / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    return folder


@pytest.fixture
def llm_settings(settings, text_models_dir, tmp_path, monkeypatch):
    config = tmp_path / "models.toml"
    config.write_text('[models.bert]\npath = "bert"\nkind = "text"\n')
    monkeypatch.setenv("ENCHANT_MODELS_DIR", str(text_models_dir))
    monkeypatch.setenv("ENCHANT_MODELS_CONFIG", str(config))
    get_settings.cache_clear()
    yield settings.model_copy(
        update={"models_dir": text_models_dir, "models_config": config, "device": "cpu"}
    )
    get_settings.cache_clear()


@pytest.mark.slow  # ~15-20 s on a quiet CPU: the constraint is checked at every generated token
def test_llm_extraction_through_the_queue_is_valid_and_stored(db, conn, llm_settings):
    story = books.save_book(conn, read_book(TEXT.encode()), user_id=None)
    field = conn.execute(
        "INSERT INTO custom_fields (story_id, field_name, field_type, applies_to) VALUES "
        "(%s, 'weather', 'text', ARRAY['scenes']) RETURNING id",
        (story["story_id"],),
    ).fetchone()["id"]
    cloak = conn.execute(
        "INSERT INTO custom_fields (story_id, field_name, field_type, applies_to) VALUES "
        "(%s, 'cloak', 'text', ARRAY['characters']) RETURNING id",
        (story["story_id"],),
    ).fetchone()["id"]
    queue = JobQueue(conn)
    job = queue.enqueue(
        NewJob("extract_scenes", {"chapter_id": str(story["chapters"][0]["id"]), "analyzer": "llm"})
    )
    workers = WorkerThreads(db, llm_settings)
    _, thread = workers.start(types=["extract_scenes"], burst=True)
    thread.join(120)
    done = queue.get(job)
    assert done.status == "completed", done.error_message
    assert done.result["analyzer"] == "llm" and done.result["counts"]["added"] == 1
    from enchant_worker.text.llm import llm_analyzer

    stats = llm_analyzer(llm_settings, None).stats
    assert stats.outputs >= 1 and stats.valid == stats.outputs  # constrained: every output parsed
    scenes = conn.execute(
        "SELECT summary, emotional_tone, analyzer FROM scenes ORDER BY scene_number"
    ).fetchall()
    assert all(s["analyzer"] == "llm" and s["emotional_tone"] for s in scenes)
    values = conn.execute(
        "SELECT field_value FROM custom_field_values WHERE custom_field_id = %s", (field,)
    ).fetchall()
    assert len(values) == 1 and all(isinstance(v["field_value"], str) for v in values)  # filled by the model
    cloaks = conn.execute(
        "SELECT c.name, v.field_value FROM custom_field_values v JOIN characters c "
        "ON c.id = v.entity_id WHERE v.custom_field_id = %s",
        (cloak,),
    ).fetchall()
    assert {c["name"] for c in cloaks} <= {"Mara Quinn", "Tobin"} and len(cloaks) >= 1
    emotions = conn.execute("SELECT primary_emotion FROM character_emotions").fetchall()
    assert len(emotions) >= 1  # one entry per present character, from the model


def test_missing_or_wrong_text_model_is_refused_at_enqueue(llm_settings):
    from enchant_worker.intake import SYSTEM_ACTOR
    from enchant_worker.intake.references import check_reference
    from enchant_worker.jobspecs import references

    def check(model: str) -> None:  # what intake runs at enqueue (and the worker again) for the spec's Ref
        spec = HANDLER.validate(
            {"chapter_id": "00000000-0000-0000-0000-000000000001", "analyzer": "llm", "text_model": model}
        )
        [ref] = [r for r in references(spec) if r.kind == "text_model"]
        check_reference(None, SYSTEM_ACTOR, ref, llm_settings)

    with pytest.raises(InvalidJob, match="text_model: unknown text model 'nope'; known: tiny-text, bert"):
        check("nope")
    with pytest.raises(
        InvalidJob,
        match=r"text model 'bert' .* is not a causal language model \(architectures: "
        r"BertModel\)",
    ):
        check("bert")
    with pytest.raises(InvalidJob, match="only the llm analyzer uses a text model"):
        HANDLER.validate({"chapter_id": "00000000-0000-0000-0000-000000000001", "text_model": "tiny-text"})


def test_the_default_text_model_is_checked_with_the_callers_settings(llm_settings, tmp_path):
    """`analyzer: llm` without `text_model` uses the configured default: intake checks it against the
    settings it was given (not the process's), for extraction and analysis alike."""
    from enchant_worker.intake import SYSTEM_ACTOR
    from enchant_worker.intake.references import check_reference
    from enchant_worker.jobspecs import job_types, parse

    config = tmp_path / "default-bert.toml"
    config.write_text('default_text = "bert"\n[models.bert]\npath = "bert"\nkind = "text"\n')
    broken = llm_settings.model_copy(update={"models_config": config})
    for job_type, key in (("extract_scenes", "chapter_id"), ("analyze_story", "story_id")):
        spec = parse(
            job_types()[job_type].spec, {key: "00000000-0000-0000-0000-000000000001", "analyzer": "llm"}
        )
        [implied] = spec.implied_references()
        assert (implied.field, implied.kind, implied.value) == ("text_model", "text_model", None)
        with pytest.raises(InvalidJob, match=r"text_model: .*'bert' .* is not a causal language model"):
            check_reference(None, SYSTEM_ACTOR, implied, broken)
        check_reference(None, SYSTEM_ACTOR, implied, llm_settings)  # the default there is tiny-text: fine
        builtin = parse(job_types()[job_type].spec, {key: "00000000-0000-0000-0000-000000000001"})
        assert builtin.implied_references() == []
