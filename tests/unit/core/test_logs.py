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
    assert record["message"] == "job abc ended" and record["level"] == "INFO" and record["logger"] == "enchant_worker.test"
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
