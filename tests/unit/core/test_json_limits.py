"""check_json_limits: the one bound on caller-supplied JSON that the API, the CLI and the queue share."""

from __future__ import annotations

import pytest

from enchant_worker.errors import InvalidJob
from enchant_worker.jobspecs.limits import (
    MAX_JSON_DEPTH,
    MAX_JSON_KEY_CHARS,
    MAX_JSON_STRING_CHARS,
    check_json_limits,
    check_text,
)


def _nested(levels: int, leaf=1):
    value = leaf
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


def test_ordinary_metadata_passes():
    check_json_limits(
        {
            "prompt": "a castle at dusk",
            "loras": [{"name": "ink", "strength": 0.8}],
            "seed": None,
            "ok": True,
            "x": 1.5,
            "long": "x" * MAX_JSON_STRING_CHARS,
            "k" * MAX_JSON_KEY_CHARS: 1,
        }
    )
    check_json_limits(_nested(MAX_JSON_DEPTH))  # exactly at the limit


@pytest.mark.parametrize(
    "value, message",
    [
        (_nested(MAX_JSON_DEPTH + 1), f"nested deeper than the limit of {MAX_JSON_DEPTH} levels"),
        (
            {"a": "x" * (MAX_JSON_STRING_CHARS + 1)},
            f"metadata.a: {MAX_JSON_STRING_CHARS + 1} characters, above the limit of {MAX_JSON_STRING_CHARS}",
        ),
        ({"k" * (MAX_JSON_KEY_CHARS + 1): 1}, f"the key has {MAX_JSON_KEY_CHARS + 1} characters"),
        (
            {"a": {"b": ["ok", "caf\udce9"]}},
            "metadata.a.b[1]: text contains a lone surrogate (\\udce9) at character 3",
        ),
        ({"\ud800x": 1}, 'metadata["\\ud800x"]: text contains a lone surrogate (\\ud800) at character 0'),
        ({"a": "nul\x00"}, "metadata.a: text may not contain NUL characters"),
        ({"two words": {"b": "\udfff"}}, 'metadata["two words"].b: text contains a lone surrogate'),
        ({1: 2}, "metadata: object keys must be strings"),
    ],
)
def test_each_bound_is_refused_naming_the_path(value, message):
    with pytest.raises(InvalidJob) as caught:
        check_json_limits(value)
    assert message in str(caught.value)
    str(caught.value).encode("ascii")  # printable anywhere: the offending text is escaped


def test_the_field_name_starts_the_path():
    with pytest.raises(InvalidJob) as caught:
        check_json_limits({"p": _nested(MAX_JSON_DEPTH)}, field="parameters")
    assert str(caught.value).startswith("parameters.p")


def test_a_long_key_is_cut_in_the_path():
    with pytest.raises(InvalidJob) as caught:
        check_json_limits({"k" * 1000: "\udce9"})
    assert len(str(caught.value)) < 200


def test_check_text_bounds_one_string():
    check_text("k" * 200, field="idempotency_key", max_chars=200)
    with pytest.raises(InvalidJob, match="idempotency_key: 9000 characters, above the limit of 200"):
        check_text("k" * 9000, field="idempotency_key", max_chars=200)
