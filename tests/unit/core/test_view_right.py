"""The VIEW right (a published story may be named by any reader) is for analytics events only: no job
type's spec may ask for it, so nobody can start work on another user's published story."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from enchant_worker.analytics.events import EVENT_TYPES
from enchant_worker.jobspecs import job_types
from enchant_worker.jobspecs.base import VIEW, Ref


def _rights(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every right a `Ref` in `model` asks for, nested models included."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    rights = set()
    for info in model.model_fields.values():
        rights |= {m.right for m in info.metadata if isinstance(m, Ref)}
        stack = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                rights |= _rights(t, seen)
            stack.extend(typing.get_args(t))
    return rights


def test_no_job_type_asks_for_the_view_right():
    specs = {name: jt.spec for name, jt in job_types().items()}
    assert specs  # the walk below can fail
    assert {name for name, spec in specs.items() if VIEW in _rights(spec)} == set()


def test_reader_events_ask_for_it():
    assert VIEW in _rights(EVENT_TYPES["story_view"]) and VIEW in _rights(EVENT_TYPES["image_view"])
