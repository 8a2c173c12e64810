"""What Postgres can store: error texts made storable, results refused with the path of the bad value."""

import pytest

from enchant_worker.queue.storable import checked_json, storable_text


def test_error_texts_are_made_storable():
    assert storable_text("caf\udce9 \x00ok") == "caf\\udce9 ok"
    assert storable_text("plain") == "plain"
    assert len(storable_text("x" * 10_000)) == 4000
    storable_text("caf\udce9").encode("utf-8")  # encodes: nothing left that Postgres refuses


@pytest.mark.parametrize(
    "value, problem",
    [
        ({"a": [1, {"b": float("inf")}]}, "result['a'][1]['b']: inf is not a JSON number"),
        ({"a\x00": 1}, "result key 'a': text contains a NUL character"),
        ({"name": "caf\udce9"}, "result['name']: text contains a lone surrogate ('\\udce9' at position 3)"),
        ({1: "x"}, "result: key 1 is not text"),
        ({"when": object()}, "result['when']: a object is not a JSON value"),
        ({"n": 10**5000}, "result: cannot be written as JSON (Exceeds the limit"),
    ],
)
def test_results_postgres_cannot_store_are_named(value, problem):
    assert checked_json(value).startswith(problem)


def test_deep_or_cyclic_results_are_refused_not_crashed_on():
    cyclic: list = []
    cyclic.append(cyclic)
    assert "nested too deeply" in checked_json({"loop": cyclic})


def test_plain_results_pass():
    assert (
        checked_json({"images": [{"path": "a.png", "seed": 1, "ok": True, "score": 0.5, "none": None}]})
        is None
    )
