"""A LoRA's preview runs on the resident pipeline only while no generation holds it (one worker may
serve generation and training at once: the preview must not switch adapters under a running job)."""

from __future__ import annotations

import threading
from pathlib import Path

from enchant_worker.generation.tiny_model import save_random_lora
from enchant_worker.handlers.lora_preview import local_provider, make_preview
from enchant_worker.jobspecs.train_lora import parse_training_request


def test_the_preview_waits_for_the_pipeline_a_running_generation_holds(train_settings, models_dir):
    provider = local_provider(train_settings)
    spec = parse_training_request(
        {
            "name": "Ink Wash",
            "training_images": ["x"],
            "base_model": "tiny-sd",
            "trigger_words": ["inkwash"],
            "resolution": 64,
        }
    )
    folder = Path(train_settings.storage) / "loras" / "preview-lock"
    finished = threading.Event()
    with provider.use(provider.registry.get("tiny-sd")) as (resident, _):  # a generation runs
        lora = save_random_lora(resident.pipe, folder / "ink-wash.safetensors", seed=1)
        before = [a.adapter_name for a in resident.adapters.loaded]
        preview = threading.Thread(
            target=lambda: (make_preview(train_settings, spec, models_dir / "tiny-sd", lora), finished.set()),
            daemon=True,
        )
        preview.start()
        assert not finished.wait(1.0), "the preview ran on a pipeline a generation holds"
        assert [
            a.adapter_name for a in resident.adapters.loaded
        ] == before  # nothing loaded under the running job
    assert finished.wait(120)  # and it runs once the generation is done
    assert (folder / "ink-wash.preview.png").is_file()
