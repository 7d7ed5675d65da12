"""Errors the services raise for the person in the chat (next to providers' own errors).

::

    UserError                 ``message`` is shown in the chat as it is: HTML, so anything
                              the user typed goes in through :func:`echo` (escaped once)
    ├── BadInput              the command's arguments are wrong; ``usage`` may follow
    ├── NotConnected          the chat has no credentials for that provider
    └── NotAllowed            the user's role (or the chat type) does not allow this
"""

from __future__ import annotations

from html import escape

# Characters of user input an error shows: enough to recognise it, and a reply that echoes a
# few inputs stays far below Telegram's 4,096 characters whatever was pasted.
ECHO_LIMIT = 64


def echo(text: str, *, limit: int = ECHO_LIMIT) -> str:
    """User input for an HTML reply: clipped to ``limit`` characters, then escaped once."""
    clipped = text if len(text) <= limit else text[: limit - 1] + "…"
    return escape(clipped)


class UserError(Exception):
    """Something the user can fix; ``message`` says what."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(UserError):
    """A command's arguments are wrong."""


class NotConnected(UserError):
    """The chat has no credentials for a provider."""


class NotAllowed(UserError):
    """The user may not do this here."""
