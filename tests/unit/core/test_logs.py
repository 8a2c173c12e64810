"""Log set-up: text or JSON lines, and the scheduler library's per-tick chatter only at DEBUG."""

import json
import logging

import pytest

from enchant_worker import logs


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.NOTSET)


def test_json_lines_for_log_shippers(capsys):
    logs.configure("INFO", "json")
    logging.getLogger("enchant_worker.test").info("job %s ended", "abc")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("enchant_worker.test").exception("it failed")
    first, second = capsys.readouterr().err.strip().splitlines()
    record = json.loads(first)
    assert (
        record["message"] == "job abc ended"
        and record["level"] == "INFO"
        and record["logger"] == "enchant_worker.test"
    )
    assert record["time"].endswith("+00:00")
    assert "ValueError: boom" in json.loads(second)["exception"]


def test_the_format_comes_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("ENCHANT_LOG_FORMAT", "json")
    logs.configure("INFO")
    logging.getLogger("x").warning("hello")
    assert json.loads(capsys.readouterr().err)["message"] == "hello"


def test_apscheduler_ticks_only_at_debug(capsys):
    logs.configure("INFO", "text")
    logging.getLogger("apscheduler.executors.default").info('Running job "reap_leases"')
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    err = capsys.readouterr().err
    assert "Running job" not in err and "was missed" in err
    logs.configure("DEBUG", "text")
    logging.getLogger("apscheduler.executors.default").info('Running job "reap_leases"')
    assert "Running job" in capsys.readouterr().err


def test_known_library_notices_become_one_project_message(capsys):
    """diffusers' own handler is replaced by ours, and its and peft's known notices are rewritten."""
    import warnings

    import torch
    from diffusers.utils import logging as diffusers_logging
    from peft import LoraConfig, inject_adapter_in_model

    diffusers_logging.get_logger("diffusers.loaders.lora_base")  # diffusers sets up its own handler
    with warnings.catch_warnings():  # inside pytest's own capture: ours takes warnings here
        warnings.simplefilter("always")
        logging.captureWarnings(False)
        logs.configure("DEBUG", "text")
        logs.adopt_library_logs()
        try:
            logging.getLogger("diffusers.loaders.lora_base").warning(
                "No LoRA keys associated to CLIPTextModel found with the prefix='text_encoder'. This is safe to "
                "ignore if LoRA state dict didn't originally have any CLIPTextModel related params. Otherwise, open "
                "an issue if you think it's unexpected: https://github.com/huggingface/diffusers/issues/new"
            )
            logging.getLogger("diffusers.pipelines.stable_diffusion").warning(
                "The following part of your input was truncated because CLIP can only handle sequences up to 77 "
                "tokens: ['on a quiet evening']"
            )
            model = torch.nn.Sequential(torch.nn.Linear(4, 4))
            for name in ("ink", "water"):  # peft's own notice, from its own code
                inject_adapter_in_model(LoraConfig(r=2, target_modules=["0"]), model, adapter_name=name)
        finally:
            logging.captureWarnings(False)
            diffusers_logging.enable_default_handler()
            diffusers_logging.disable_propagation()
    err = capsys.readouterr().err
    assert "open an issue" not in err and "Already found" not in err, err
    assert "INFO diffusers.loaders.lora_base: LoRA: no weights for the text_encoder (CLIPTextModel)" in err
    assert (
        "WARNING diffusers.pipelines.stable_diffusion: prompt: longer than the CLIP text encoder's 77 "
        "tokens; these words were left out: 'on a quiet evening'" in err
    )
    assert "DEBUG py.warnings: LoRA: another adapter joins the resident model" in err
