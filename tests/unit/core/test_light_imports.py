"""The control plane starts fast: loading the handler registry, the API app and the scheduler must not
import torch (handlers import the ML layers only when they run)."""

import subprocess
import sys

import pytest

CHECK = """
import sys
{imports}
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "peft", "accelerate") if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "from enchant_worker.handlers import default_registry; default_registry()",
        "import enchant_worker.cli; enchant_worker.cli._parser()",
        "from enchant_worker.api import create_app",
        "import enchant_worker.scheduling",
    ],
)
def test_no_ml_libraries_are_imported(imports):
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(imports=imports)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{imports!r} imported {out.stdout.strip()}"
