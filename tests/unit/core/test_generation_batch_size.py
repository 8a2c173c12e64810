"""ENCHANT_GENERATION_BATCH_SIZE: how many generate_image jobs a worker draws in one call."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from enchant_worker.config import Settings
from enchant_worker.worker import device


@pytest.mark.parametrize("value", [0, -1, 65])
def test_a_batch_size_out_of_range_is_refused_naming_the_setting(value):
    with pytest.raises(ValidationError, match="generation_batch_size"):
        Settings(generation_batch_size=value)


def test_the_worker_command_refuses_it_in_one_line():
    env = {**os.environ, "ENCHANT_GENERATION_BATCH_SIZE": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "enchant_worker.cli", "worker", "--types", "generate_image"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert (
        "invalid configuration: generation_batch_size: Input should be greater than or equal to 1"
        in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_configured_wins_else_four_on_a_cuda_device_and_off_on_the_cpu():
    import torch

    assert device.generation_batch_size(8, "auto") == 8
    assert device.generation_batch_size(2, "cpu") == 2
    assert device.generation_batch_size(None, "cpu") == 1
    assert device.generation_batch_size(None, "auto") == (
        device.CUDA_BATCH_SIZE if torch.cuda.is_available() else 1
    )
