"""Whether any test secret leaked into a log, a message to Telegram or a database file.

The design, kept small on purpose:

* **What is a secret.** Every credential value the tests and fakes use: provider API keys,
  passwords, bot tokens (not user names or user ids: those are not secret). A module that
  uses one declares it where it defines it, ``TOKEN = secret("4242:…")``, so the registry
  (:data:`SECRETS`) is complete once the test modules are imported, before any test runs.
  Values shorter than :data:`MIN_LENGTH` are refused: they would match ordinary text. A
  secret is found by its first :data:`PREFIX` characters, so a truncated echo counts too.
* **Where it is looked for**, for the whole run, by :data:`WATCH`:
  - every Bot API call the bot made to the fake Telegram (``FakeTelegram.dispatch``, shared
    by the offline request layer and the HTTP fake): its parameters and uploaded files;
  - every test's captured log records, stdout and stderr (pytest's capture, fed by
    ``pytest_runtest_logreport`` in ``conftest.py``): records at ``INFO``, the bot's default
    level, with the libraries quieted as ``python -m bot`` quiets them, and as the bot wrote
    them, i.e. before the masking formatter, so a secret that reaches a log call is found;
  - at the end, every file under the run's temporary folder: the SQLite databases (with
    their ``-wal`` files, byte for byte, freed pages included), the real processes' logs.
* **The verdict.** ``pytest_sessionfinish`` fails the run (exit 1) and the terminal summary
  names each secret, where it was found and in which test.

``tests/test_secrets.py`` adds one flow searched more closely (its log down to ``DEBUG``,
through the bot's own formatter) and canaries that prove each search finds what it should.
PostgreSQL keeps its files to itself: on ``make test-pg`` the file scan sees the processes'
logs only, and that test reads every table of its database instead. Secrets the tests make
up on the fly (the random ``SECRET_KEY`` of each test) are not registered.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_LENGTH = 6
# A secret is searched for by its first PREFIX characters (all of it when shorter): a reply
# or a log line that cuts a secret short ("sk-live-abcdefgh…") still gives it away.
PREFIX = 12
MAX_FILE_BYTES = 64 * 1024 * 1024


SECRETS: set[str] = set()


def secret(value: str) -> str:
    """Declare ``value`` a secret credential of the tests; returns it unchanged."""
    if len(value) < MIN_LENGTH:
        raise ValueError(f"a test secret needs {MIN_LENGTH}+ characters to be searched for")
    SECRETS.add(value)
    return value


@dataclass(frozen=True, slots=True)
class Hit:
    """One secret found somewhere, during one test."""

    secret: str
    where: str
    test: str

    def describe(self) -> str:
        """``'<secret>' in <where> (during <test>)``; files are searched after the run."""
        when = f"during {self.test}" if self.test else "after the run"
        return f"{self.secret!r} in {self.where} ({when})"


def _text(value: Any) -> str:
    """Everything a Bot API call carries, as text (uploaded files decoded leniently)."""
    content = getattr(value, "content", None)
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return str(value)


class Watch:
    """Collects the hits of a set of secrets in what it is shown."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = secrets
        self.hits: list[Hit] = []
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # the threaded Bot API server reports from its thread

    def observe(self, where: str, text: str, *, test: str | None = None) -> list[Hit]:
        """Look for every secret in ``text``; record and return the hits."""
        return self._record([s for s in list(self.secrets) if s[:PREFIX] in text], where, test)

    def observe_call(self, method: str, params: dict[str, Any]) -> list[Hit]:
        """A Bot API call the bot made: its parameters and any uploaded file."""
        return self.observe(f"a {method} call to Telegram", json.dumps(params, default=_text))

    def observe_bytes(self, where: str, data: bytes) -> list[Hit]:
        """Raw bytes (a database file): each secret as UTF-8."""
        found = [s for s in list(self.secrets) if s[:PREFIX].encode() in data]
        return self._record(found, where, "")

    def _record(self, found: list[str], where: str, test: str | None) -> list[Hit]:
        if test is None:  # the test running now, as pytest publishes it
            test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        hits = []
        with self._lock:
            for value in found:
                if (value, where) not in self._seen:  # a log is shown once per test phase
                    self._seen.add((value, where))
                    hits.append(Hit(value, where, test))
            self.hits.extend(hits)
        return hits

    def scan_files(self, root: Path) -> list[Hit]:
        """Every regular file under ``root`` (databases, their WAL, logs), byte for byte."""
        hits: list[Hit] = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                hits += self.observe_bytes(f"the file {path}", path.read_bytes())
        return hits


WATCH = Watch(SECRETS)
