import pytest

from enchant_worker.errors import InvalidJob
from enchant_worker.generation.params import parse_size, validate_settings


def test_defaults_apply_and_seeds_follow_the_first():
    s = validate_settings(
        {"seed": 41, "count": 3}, {"steps": 20, "width": 64, "height": 64, "cfg_scale": 6.0}
    )
    assert (s.width, s.height, s.steps, s.cfg_scale, s.sampler, s.seeds) == (
        64,
        64,
        20,
        6.0,
        "Euler",
        (41, 42, 43),
    )


def test_unset_seed_is_drawn_and_recorded():
    s = validate_settings({"count": 2})
    assert len(s.seeds) == 2 and s.seeds[1] == (s.seeds[0] + 1) % 2**32


def test_size_text_and_list():
    assert parse_size("512x768") == (512, 768)
    assert parse_size([64, 128]) == (64, 128)
    assert validate_settings({"size": "128x64"}).width == 128


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": 0}, "steps: must be from 1 to 150, not 0"),
        ({"steps": 151}, "steps: must be from 1 to 150, not 151"),
        ({"steps": 2.5}, "steps: must be an integer from 1 to 150"),
        ({"steps": "20"}, "steps: must be an integer from 1 to 150"),
        ({"steps": True}, "steps: must be an integer from 1 to 150"),
        ({"cfg_scale": 31}, "cfg_scale: must be from 0.0 to 30.0, not 31"),
        ({"cfg_scale": -1}, "cfg_scale: must be from 0.0 to 30.0"),
        ({"cfg_scale": float("nan")}, "cfg_scale: must be a number from 0.0 to 30.0"),
        ({"width": 32}, "width: must be from 64 to 2048, not 32"),
        ({"height": 4096}, "height: must be from 64 to 2048, not 4096"),
        ({"width": 100}, "width: must be a multiple of 8 from 64 to 2048, not 100"),
        ({"size": "big"}, "size: must be 'WIDTHxHEIGHT'"),
        ({"size": "8x8"}, "size: must be from 64 to 2048, not 8"),
        ({"count": 0}, "count: must be from 1 to 8, not 0"),
        ({"count": 9}, "count: must be from 1 to 8, not 9"),
        ({"seed": -5}, "seed: must be from 0 to 4294967295, not -5"),
        ({"seed": 2**32}, "seed: must be from 0 to 4294967295"),
        ({"seeds": []}, "seeds: must be a non-empty list"),
        ({"seeds": [1, "x"]}, "seeds[1]: must be an integer from 0 to 4294967295"),
        ({"sampler": "Heun++"}, "sampler: must be one of Euler, Euler a, DDIM"),
    ],
)
def test_bad_settings_name_the_field_and_the_range(values, message):
    with pytest.raises(InvalidJob) as error:
        validate_settings(values)
    assert message in str(error.value)
