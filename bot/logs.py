"""Logging set-up: one format, quiet HTTP libraries, and redaction of known secrets.

httpx logs every request URL at INFO, and Telegram URLs contain the bot token, so those
loggers are raised to WARNING; the formatter also masks the token anywhere it might still
appear, tracebacks included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from providers.http import quiet_http_logging

MASK = "***"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret (of at least 6 characters) replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= 6:
            text = text.replace(secret, MASK)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats records, then replaces every known secret in the whole text."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if len(s) >= 6]

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record (traceback included) with secrets masked."""
        return redact(super().format(record), self._secrets)


def quiet_libraries() -> None:
    """Raise the libraries whose INFO lines are noise, or hold the token, to WARNING."""
    quiet_http_logging()
    # The JobQueue's scheduler says "Scheduler started" at INFO: not our schedules.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def setup_logging(level: str, *, secrets: Iterable[str]) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_libraries()
