import pytest

from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs.train_lora import parse_training_request

BASE = dict(name="Ink Wash", training_images=["imgs"], base_model="tiny-sd")


def test_seed_shaped_request_is_accepted():
    spec = parse_training_request(
        {
            **BASE,
            "user_id": "6d1f7a52-4c1e-4d8e-9f7e-2a7d6f0c9b11",
            "description": "brush strokes",
            "training_parameters": {"learning_rate": 2e-4, "batch_size": 2, "epochs": 3, "resolution": 512},
        }
    )
    assert (spec.learning_rate, spec.batch_size, spec.epochs, spec.resolution) == (2e-4, 2, 3, 512)
    assert spec.lora_alpha == spec.rank == 16
    assert spec.file_stem == "ink-wash"


def test_metadata_shape_of_initiate_lora_training_is_accepted():
    spec = parse_training_request({**BASE, "parameters": {"epochs": 4}})
    assert spec.epochs == 4


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("learning_rate", 0.5, "learning_rate: must be between 1e-06 and 0.01, got 0.5"),
        ("batch_size", 0, "batch_size: must be between 1 and 16, got 0"),
        ("epochs", 5000, "epochs: must be between 1 and 1000, got 5000"),
        ("resolution", 500, "resolution: must be between 16 and 2048, a multiple of 8, got 500"),
        ("rank", 0, "rank: must be between 1 and 256, got 0"),
        ("alpha", -1, "alpha: must be above 0, at most 1024, got -1"),
        ("max_train_steps", 0, "max_train_steps: must be between 1 and 100000, got 0"),
        ("seed", -1, "seed: must be between 0 and 4294967295, got -1"),
        ("mixed_precision", "fp8", "mixed_precision: must be 'auto', 'no', 'fp16' or 'bf16', got 'fp8'"),
        ("noise_offset", 2, "noise_offset: must be between 0 and 1, got 2"),
        ("snr_gamma", 0, "snr_gamma: must be above 0, at most 20, got 0"),
        (
            "trigger_words",
            ["a,b"],
            "trigger_words: each trigger word must be 1 to 50 characters without commas",
        ),
        ("learning_rate", "fast", "learning_rate: must be a valid number"),
        ("bogus", 1, "bogus: unknown field"),
    ],
)
def test_out_of_range_hyperparameters_name_the_field_and_range(field, value, expected):
    with pytest.raises(InvalidJob) as info:
        parse_training_request({**BASE, field: value})
    assert expected in str(info.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(InvalidJob) as info:
        parse_training_request({"name": "", "training_images": [], "rank": 999})
    message = str(info.value)
    for part in ("name:", "training_images:", "base_model: required", "rank: must be between 1 and 256"):
        assert part in message


def test_fingerprint_ignores_names_but_not_hyperparameters():
    a = parse_training_request(BASE)
    assert (
        a.fingerprint()
        == parse_training_request({**BASE, "name": "Other", "checkpoint_every": 5}).fingerprint()
    )
    assert a.fingerprint() != parse_training_request({**BASE, "rank": 8}).fingerprint()
