import json

import torch

from enchant_worker.generation.tiny_model import (
    TINY_MARKER,
    build_tiny_pipeline,
    ensure_tiny_model,
    tiny_model_ready,
)
from enchant_worker.generation.tokenizer_files import build_vocab_and_merges, write_tokenizer_files


def test_tiny_pipeline_is_deterministic_given_a_seed():
    a = build_tiny_pipeline(seed=3).unet.state_dict()
    b = build_tiny_pipeline(seed=3).unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_saved_folder_is_marked_and_holds_only_safetensors(models_dir):
    folder = models_dir / "tiny-sd"
    assert tiny_model_ready(folder)
    assert json.loads((folder / TINY_MARKER).read_text())["family"] == "sd15"
    assert not list(folder.rglob("*.bin"))
    assert list(folder.rglob("*.safetensors"))


def test_ensure_rebuilds_a_half_built_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("enchant_worker.generation.tiny_model.save_tiny_model", lambda f: calls.append(f))
    (tmp_path / "tiny").mkdir()  # exists, but without the marker: an interrupted build
    ensure_tiny_model(tmp_path / "tiny")
    assert calls == [tmp_path / "tiny"]


def test_tokenizer_files_are_written_locally_and_spell_common_words_whole(tmp_path):
    from transformers import CLIPTokenizer

    write_tokenizer_files(tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path))
    vocab, _ = build_vocab_and_merges()
    ids = tokenizer("the queen", add_special_tokens=False).input_ids
    assert ids == [vocab["the</w>"], vocab["queen</w>"]]
    assert len(tokenizer("zqxj", add_special_tokens=False).input_ids) == 4  # unknown words: characters
