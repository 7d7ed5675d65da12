"""Encryption of stored credentials with Fernet; several keys so they can rotate.

``SECRET_KEY`` holds one or more Fernet keys separated by commas, newest first: new data is
encrypted with the first, and data written under any of them can be read. When no key is
configured, one is generated once into the data folder (mode 0600) and reused after.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class SecretKeyError(ValueError):
    """``SECRET_KEY`` is not a list of valid Fernet keys."""


class UndecryptableSecret(Exception):
    """Stored credentials cannot be read with any configured key."""


class CredentialCipher:
    """Encrypts and decrypts credential dictionaries."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError("SECRET_KEY holds no key.")
        try:
            fernets = [Fernet(k.strip().encode()) for k in keys]
            self._primary = fernets[0]
            self._fernet = MultiFernet(fernets)
        except ValueError as exc:
            raise SecretKeyError(
                "SECRET_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated."
            ) from exc

    def encrypt(self, values: Mapping[str, str]) -> bytes:
        """Encrypt a credential mapping with the newest key."""
        return self._fernet.encrypt(json.dumps(dict(values), sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, str]:
        """Decrypt a credential mapping written under any configured key."""
        try:
            raw = self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise UndecryptableSecret("stored credentials do not match SECRET_KEY") from exc
        loaded = json.loads(raw)
        return {str(k): str(v) for k, v in loaded.items()}

    def rotated(self, token: bytes) -> bytes | None:
        """The token re-encrypted under the newest key, or None when it already is.

        Raises:
            UndecryptableSecret: when no configured key reads it.

        """
        try:
            self._primary.decrypt(token)
            return None
        except InvalidToken:
            pass
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise UndecryptableSecret("stored credentials do not match SECRET_KEY") from exc


def load_or_create_keys(configured: str | None, data_dir: Path) -> list[str]:
    """The configured keys, or the key stored in ``data_dir``, created once if missing."""
    if configured and configured.strip():
        return [k for k in (part.strip() for part in configured.split(",")) if k]
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return [path.read_text().strip()]
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not both write a key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return [path.read_text().strip()]
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    log.warning(
        "SECRET_KEY is not set: generated a new encryption key in %s (mode 0600). "
        "Back it up; stored credentials cannot be read without it.",
        path,
    )
    return [key.decode()]
