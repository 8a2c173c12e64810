"""Checkpoints: preemption and cancellation checkpoint then raise; a resumed run carries on to the same
weights as an uninterrupted one; a non-finite loss or a full disk keeps the last good checkpoint."""

import errno

import pytest
import torch
from safetensors.torch import load_file

from enchant_worker.errors import JobCancelled, Preempted
from enchant_worker.training import checkpoints, trainer
from enchant_worker.training.dataset import prepare_dataset
from enchant_worker.training.errors import CheckpointMismatch, CheckpointWriteFailed, TrainingDiverged
from enchant_worker.training.trainer import TrainingHooks, train_lora

TOTAL_STEPS = 6


@pytest.fixture
def job(tmp_path, images, make_spec, tiny_model):
    spec = make_spec(images, max_train_steps=TOTAL_STEPS, checkpoint_every=2)
    dataset = prepare_dataset(spec, tmp_path / "data")

    def run(work="work", out="out", hooks=None, **overrides):
        this = spec.model_copy(update=overrides) if overrides else spec
        return train_lora(this, dataset, tiny_model, tmp_path / work, tmp_path / out, hooks)

    return run, tmp_path


class Recorder:
    def __init__(self, yield_at=None, stop_at=None):
        self.steps, self.yield_at, self.stop_at = [], yield_at, stop_at

    def hooks(self):
        return TrainingHooks(
            on_progress=lambda step, total, loss, s, eta: self.steps.append((step, total, loss, s, eta)),
            should_yield=lambda: self.steps[-1][0] == self.yield_at,
            should_stop=lambda: self.steps[-1][0] == self.stop_at,
        )


def _steps(work):
    return [int(p.name.removeprefix("step-")) for p in checkpoints.list_checkpoints(work / "checkpoints")]


def test_preemption_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one(job):
    run, tmp = job
    straight = run(work="straight", out="straight-out")

    first = Recorder(yield_at=3)
    with pytest.raises(Preempted, match="paused at step 3/6"):
        run(hooks=first.hooks())
    assert [s[0] for s in first.steps] == [1, 2, 3]
    assert _steps(tmp / "work") == [2, 3]

    second = Recorder()
    resumed = run(hooks=second.hooks())
    assert resumed.resumed_from_step == 3 and resumed.steps == TOTAL_STEPS
    assert [s[0] for s in second.steps] == [4, 5, 6]  # the step count carries on
    assert all(total == TOTAL_STEPS and eta >= 0 and s > 0 for _, total, _, s, eta in second.steps)

    # bit-identical: the fp32 checkpoint at step 4 (written after the resume) and the exported files
    for name in ("lora.safetensors",):
        a = load_file(tmp / "straight/checkpoints/step-00000004" / name)
        b = load_file(tmp / "work/checkpoints/step-00000004" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = load_file(straight.lora_path), load_file(resumed.lora_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.content_hash == straight.content_hash
    assert resumed.final_loss == pytest.approx(straight.final_loss, rel=1e-6)


def test_checkpointing_and_exporting_are_reported_as_stages(job):
    """Between steps the run says what it does (the job's progress shows it; no frozen bar)."""
    run, _ = job
    events = []
    run(hooks=TrainingHooks(on_progress=lambda step, *_: events.append(step), on_stage=events.append))
    assert events == [1, 2, "checkpointing", 3, 4, "checkpointing", 5, 6, "exporting"]


def test_cancellation_checkpoints_then_raises(job):
    run, tmp = job
    with pytest.raises(JobCancelled, match="cancelled at step 1/6; a checkpoint was kept"):
        run(hooks=Recorder(stop_at=1).hooks())
    assert _steps(tmp / "work") == [1]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(job, monkeypatch):
    run, tmp = job
    real, calls = trainer.diffusion_loss, []

    def exploding(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 3 else loss

    monkeypatch.setattr(trainer, "diffusion_loss", exploding)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 3; lower learning_rate"):
        run()
    assert _steps(tmp / "work") == [2]
    monkeypatch.setattr(trainer, "diffusion_loss", real)
    assert run().resumed_from_step == 2


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(job, monkeypatch):
    run, tmp = job
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        if str(path).endswith("state.pt") and "step-00000004" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(CheckpointWriteFailed) as info:
        run()
    message = str(info.value)
    assert (
        "step 4" in message
        and "the disk is full" in message
        and "the checkpoint at step 2 is intact" in message
    )
    assert _steps(tmp / "work") == [2]
    assert not list((tmp / "work/checkpoints").glob(".tmp-*"))


def test_checkpoint_of_other_settings_is_not_resumed(job):
    run, _ = job
    with pytest.raises(Preempted):
        run(hooks=Recorder(yield_at=2).hooks())
    with pytest.raises(CheckpointMismatch, match="other training settings or images"):
        run(rank=8)
