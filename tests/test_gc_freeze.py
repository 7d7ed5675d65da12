"""The process freezes what start-up left alive, so full collections stop walking it."""

from __future__ import annotations

import gc

import pytest

import bot.__main__ as entry
from bot.app import freeze_long_lived_objects


def test_start_up_objects_are_frozen() -> None:
    try:
        freeze_long_lived_objects()
        assert gc.get_freeze_count() > 10_000  # imports alone leave far more than this
    finally:
        gc.unfreeze()  # this test process goes on building applications


def test_python_m_bot_freezes_after_building_the_application(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []

    async def polling(_app: object, _stop: object, *, grace: float) -> None:
        order.append("run")

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    monkeypatch.setattr(entry, "setup_logging", lambda *_a, **_k: None)
    monkeypatch.setattr(entry, "build_application", lambda _s: order.append("build"))
    monkeypatch.setattr(entry, "freeze_long_lived_objects", lambda: order.append("freeze"))
    monkeypatch.setattr(entry, "serve_polling", polling)
    entry.main([])
    assert order == ["build", "freeze", "run"]
