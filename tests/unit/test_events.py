"""Event Structs stay untracked by the cyclic collector, and safely so."""

from __future__ import annotations

import gc
import typing
from datetime import UTC, datetime

import msgspec
import pytest

from tgstats import events
from tgstats.features import extract

STRUCTS = [
    getattr(events, name)
    for name in events.__all__
    if isinstance(getattr(events, name), type) and issubclass(getattr(events, name), msgspec.Struct)
]
ATOMIC = (int, str, bool, float, datetime, type(None))


def leaves(annotation: typing.Any) -> list[typing.Any]:
    """The types a field can hold, through unions and tuples."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation]
    if origin is tuple or origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return [
            leaf for arg in typing.get_args(annotation) if arg is not ... for leaf in leaves(arg)
        ]
    return [annotation]  # a list, dict, set...: mutable, could close a cycle


@pytest.mark.parametrize("struct", STRUCTS, ids=lambda s: s.__name__)
def test_untracked_and_holding_only_values_that_cannot_form_cycles(struct: type) -> None:
    assert struct.__struct_config__.gc is False
    for name, annotation in typing.get_type_hints(struct).items():
        for leaf in leaves(annotation):
            assert leaf in ATOMIC or leaf in STRUCTS, f"{struct.__name__}.{name}: {leaf}"


def test_a_message_event_is_not_tracked() -> None:
    event = events.MessageEvent(
        chat_id=-1001, msg_id=1, date=datetime(2026, 1, 1, tzinfo=UTC),
        features=extract("hello https://example.org #tag"),
    )  # fmt: skip
    assert not gc.is_tracked(event)
    assert not gc.is_tracked(event.features)
