"""Logging never shows a secret, and httpx's request lines (with the token) stay quiet."""

from __future__ import annotations

import logging

from bot.logs import RedactingFormatter, setup_logging


def test_formatter_masks_secrets_in_messages_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(message)s", ["123:SECRET-TOKEN", "short"])
    try:
        raise RuntimeError("calling https://api.telegram.org/bot123:SECRET-TOKEN/getMe")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "url %s",
            ("bot123:SECRET-TOKEN/x",),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    text = formatter.format(record)
    assert "SECRET-TOKEN" not in text
    assert text.count("***") >= 2
    # values under 6 characters are not masked: they would hit ordinary words
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "a short word", None, None)
    assert formatter.format(plain) == "a short word"


def test_http_request_logging_is_quiet() -> None:
    setup_logging("DEBUG", secrets=["123:SECRET-TOKEN"])
    try:
        assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
        assert logging.getLogger("httpcore").getEffectiveLevel() >= logging.WARNING
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
