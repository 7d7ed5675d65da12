"""Errors the services raise for the person in the chat (next to providers' own errors).

::

    UserError                 ``message`` is shown in the chat as it is: HTML, so anything
                              the user typed must be escaped where it is interpolated
    ├── BadInput              the command's arguments are wrong; ``usage`` may follow
    ├── NotConnected          the chat has no credentials for that provider
    └── NotAllowed            the user's role (or the chat type) does not allow this
"""

from __future__ import annotations


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
