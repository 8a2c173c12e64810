"""The preview image of a freshly trained LoRA, drawn through the generation path.

The base model's pipeline is made resident once per worker process by the local provider that
`generate_image` jobs use (its pipeline cache), the new LoRA is activated on it like any job's LoRA, and the
image is written next to the LoRA file as `<name>.preview.png` with AUTOMATIC1111-readable metadata.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enchant_worker.jobspecs.train_lora import LoRATrainingSpec

PREVIEW_STRENGTH = 1.0
PREVIEW_SUFFIX = ".preview.png"


@dataclass(frozen=True)
class Preview:
    path: Path
    prompt: str
    seed: int
    width: int
    height: int
    steps: int
    model: str
    content_hash: str
    parameters: dict[str, Any]  # for the images row: names the LoRA
    timings_s: dict[str, float]


def local_provider(settings):
    """The process's local provider, shared with `generate_image`: one resident pipeline per worker."""
    from enchant_worker.handlers.generate_image import providers_for

    return providers_for(settings).get("local")


def _model_spec(provider, spec: LoRATrainingSpec, base_folder: Path):
    """The generation side's spec of the base model: the configured one, else the folder trained on."""
    from enchant_worker.model_catalog import GENERIC_DEFAULTS, ModelSpec

    if spec.base_model in provider.registry.models:
        return provider.registry.get(spec.base_model)
    size = {"width": spec.resolution, "height": spec.resolution}
    return ModelSpec(spec.base_model, Path(base_folder), "sd15", defaults={**GENERIC_DEFAULTS, **size})


def make_preview(
    settings, spec: LoRATrainingSpec, base_folder: Path, lora_file: Path, is_cancelled=None
) -> Preview:
    """Draw the trigger words with the LoRA at full strength; raises what generation raises."""
    from enchant_worker.generation.adapters import LoraRequest
    from enchant_worker.generation.generate import generate
    from enchant_worker.generation.params import GenerationParams, validate_settings
    from enchant_worker.generation.png_metadata import ImageParameters, save_png

    # 1. The trigger words (or the name), the model's defaults, the training seed
    provider = local_provider(settings)
    model = _model_spec(provider, spec, base_folder)
    prompt = ", ".join(spec.trigger_words) or spec.name
    values = validate_settings({"seed": spec.seed, "count": 1}, model.defaults)
    lora = LoraRequest(spec.file_stem, Path(lora_file), PREVIEW_STRENGTH)
    params = GenerationParams(prompt, "", values, (lora,))

    # 2. On the resident pipeline of the base model, held like any generation's (no adapter switch
    #    under a running job when one worker serves generation and training)
    with provider.use(model) as (resident, load_s):
        outcome = generate(resident, params, is_cancelled=is_cancelled)

    # 3. Next to the LoRA, with the parameters AUTOMATIC1111 reads
    lora_hash = outcome.adapters.hashes.get(spec.file_stem)
    parameters = {
        "preview": True,
        "lora_name": spec.name,
        "loras": [{"name": spec.file_stem, "strength": PREVIEW_STRENGTH, "hash": lora_hash}],
        "steps": values.steps,
        "cfg_scale": values.cfg_scale,
        "sampler": values.sampler,
    }
    path = Path(lora_file).with_name(spec.file_stem + PREVIEW_SUFFIX)
    image_parameters = ImageParameters(
        prompt=prompt,
        negative_prompt="",
        steps=values.steps,
        sampler=values.sampler,
        cfg_scale=values.cfg_scale,
        seed=values.seeds[0],
        width=values.width,
        height=values.height,
        model=model.name,
        loras=[(spec.file_stem, PREVIEW_STRENGTH, lora_hash or "")],
    )
    save_png(outcome.images[0], path, image_parameters, {"prompt": prompt, **parameters})
    return Preview(
        path=path,
        prompt=prompt,
        seed=values.seeds[0],
        width=values.width,
        height=values.height,
        steps=values.steps,
        model=model.name,
        content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        parameters=parameters,
        timings_s={"model_load_s": load_s, **outcome.timings_s},
    )
