"""Training checkpoints: written whole or not at all, resumed from the last good one.

A checkpoint is a folder `step-00000120/` holding `lora.safetensors` (the trainable weights, fp32),
`state.pt` (optimizer, LR scheduler, grad scaler, RNG states, data order, smoothed loss) and
`checkpoint.json`, written last. It is built in a hidden temporary folder and renamed into place, so
a crash or a full disk never leaves a half-written checkpoint where a resume would look. The newest
`KEEP` checkpoints are kept.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from enchant_worker.training.errors import CheckpointWriteFailed

KEEP = 2
PREFIX = "step-"
MARKER = "checkpoint.json"


@dataclass
class Checkpoint:
    step: int
    weights: dict[str, torch.Tensor]  # trainable parameters by name, fp32 on the CPU
    state: dict[str, Any]  # optimizer, lr_scheduler, scaler, rng, data order, loss...
    info: dict[str, Any] = field(default_factory=dict)  # fingerprint, dataset hash, total steps


def _folder_for(root: Path, step: int) -> Path:
    return root / f"{PREFIX}{step:08d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    if not Path(root).is_dir():
        return []
    found = [p for p in Path(root).glob(f"{PREFIX}*") if (p / MARKER).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def save_checkpoint(root: Path, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` under `root` atomically; on failure the earlier checkpoints are untouched."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = _folder_for(root, checkpoint.step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        save_file(
            {k: v.detach().float().cpu().contiguous() for k, v in checkpoint.weights.items()},
            str(tmp / "lora.safetensors"),
        )
        torch.save(checkpoint.state, tmp / "state.pt")
        (tmp / MARKER).write_text(json.dumps({"step": checkpoint.step, **checkpoint.info}), encoding="utf-8")
        _fsync_folder(tmp)
        if final.exists():  # the same step saved twice (e.g. periodic, then on cancel)
            shutil.rmtree(final)
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = list_checkpoints(root)
        kept = (
            f"the checkpoint at step {_step_of(previous[-1])} is intact"
            if previous
            else "no earlier checkpoint exists"
        )
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
        raise CheckpointWriteFailed(
            f"Could not write the training checkpoint at step {checkpoint.step} in {root}: {reason}; "
            f"{kept}. Free disk space and run the job again to resume."
        ) from exc
    _prune(root)
    return final


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _step_of(folder: Path) -> int:
    return int(folder.name[len(PREFIX) :])


def _prune(root: Path) -> None:
    for old in list_checkpoints(root)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(f".tmp-{PREFIX}*"):  # left by a crash mid-write
        shutil.rmtree(stale, ignore_errors=True)


def load_latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest complete checkpoint under `root`, or None."""
    found = list_checkpoints(root)
    if not found:
        return None
    folder = found[-1]
    info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    return Checkpoint(
        step=int(info.pop("step")),
        weights=load_file(str(folder / "lora.safetensors")),
        state=torch.load(folder / "state.pt", map_location="cpu", weights_only=True),
        info=info,
    )


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """The random states that shape the next steps: our generator's and torch's global ones."""
    state: dict[str, Any] = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
