"""RowFactory builds the same transient objects as a table model's ``__init__``, faster."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage.models import Batch, Message
from storage.rows import RowFactory

VALUES = {
    "batch_id": 3,
    "chat_id": 1,
    "provider": "nusasms",
    "channel": "wa",
    "recipient": "6281234567890",
    "text": "hello",
    "idempotency_key": "tg:1:2:0",
}


def test_same_values_and_defaults_as_the_model() -> None:
    fast, slow = RowFactory(Message)(**VALUES), Message(**VALUES)
    for name in Message.model_fields:
        if name not in ("created_at", "updated_at"):
            assert getattr(fast, name) == getattr(slow, name), name
    assert fast.created_at.tzinfo is not None  # default factories run (utcnow)
    assert inspect(fast).transient
    fast.state = "accepted"  # instrumented like any other object
    assert fast.state == "accepted"


def test_each_object_gets_its_own_factory_defaults() -> None:
    make = RowFactory(Batch)
    first = make(chat_id=1, route="nusasms:wa", text="t", origin="a", created_by=1)
    second = make(chat_id=1, route="nusasms:wa", text="t", origin="b", created_by=1)
    assert first.card_message_id is None
    assert first.created_at <= second.created_at
    assert first.origin != second.origin


@pytest.mark.parametrize(
    "values", [{**VALUES, "colour": "red"}, {k: v for k, v in VALUES.items() if k != "text"}]
)
def test_unknown_or_missing_fields_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="fields"):
        RowFactory(Message)(**values)
