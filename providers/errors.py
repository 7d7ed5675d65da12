"""The one error tree every provider adapter raises.

Adapters translate HTTP status codes, vendor error codes, transport failures and unreadable
bodies into these classes in exactly one place each, so the layers above never see httpx or a
vendor's JSON::

    ProviderError                     base; ``message`` is safe to show in a chat
    ├── AuthError                     credentials refused (401/403, NusaSMS SMS -5)
    ├── ValidationError               the request was refused as malformed (400/404/422)
    ├── MessageRejected               the provider refused this message or recipient
    ├── InsufficientCredit            no balance / balance expired
    ├── RateLimited                   slow down; ``retry_after`` seconds
    ├── ProviderUnavailable           transport failure or 5xx; ``maybe_sent`` says whether
    │                                 the request could have been processed anyway
    └── UnexpectedResponse            a body that does not match the documented shape

``maybe_sent`` matters for sends: a request that may have reached the provider must never be
repeated blindly, so the message is marked ``unknown`` instead of ``failed``.

``not_sent`` is the stronger opposite: the provider certainly did not act on the message
(credentials, a refused request or recipient, no credit, a 429 past its retries, a connection
that was never made). Only such a failure lets a send move on to the next route of a failover
chain; a timeout, a 5xx or a lost answer never does.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed; ``message`` is written for the person in the chat."""

    maybe_sent: bool = False
    not_sent: bool = False

    def __init__(self, message: str, *, provider: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code

    def __str__(self) -> str:
        return self.message


class AuthError(ProviderError):
    """The provider refused the credentials."""

    not_sent = True


class ValidationError(ProviderError):
    """The provider refused the request as malformed or out of range."""

    not_sent = True


class MessageRejected(ProviderError):
    """The provider refused this message or recipient (spam filter, daily limit, route)."""

    not_sent = True


class InsufficientCredit(ProviderError):
    """The account has no credit left, or its balance expired."""

    not_sent = True


class RateLimited(ProviderError):
    """The provider asked to slow down; try again after ``retry_after`` seconds."""

    not_sent = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        retry_after: float = 1.0,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or failed on its side."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        maybe_sent: bool = False,
        not_sent: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.maybe_sent = maybe_sent
        self.not_sent = not_sent and not maybe_sent


class UnexpectedResponse(ProviderError):
    """The provider answered with a body that does not match its documentation.

    On a send the request was processed to some degree, so the outcome is unknown.
    """

    maybe_sent = True
