"""Reading Parrotica's answers: the ``x-api-key`` auth, the envelope, and the error mapping.

Every answer passes :func:`read_answer`, the one place where HTTP statuses, the envelope's
``status``/``code`` and unreadable bodies become :mod:`providers.errors` classes::

    HTTP 401/403 (or body code)  → AuthError
    HTTP 402, "insufficient …"   → InsufficientCredit
    HTTP 404                     → MessageRejected when a send's recipient is refused
                                   ("contact not found: 7"), ValidationError when an item is
                                   "not found", else ValidationError hinting at PARROTICA_PATHS
    other 4xx, failed envelope   → ValidationError with Parrotica's ``message``
    HTTP 429                     → RateLimited with ``Retry-After``
    5xx                          → ProviderUnavailable (``maybe_sent`` on a send, not on 503)
    a body that is not JSON      → UnexpectedResponse

Provider text shown in a chat is cut to a few hundred characters and never contains the key.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass

import httpx

from i18n import N_, _
from providers.errors import (
    AuthError,
    InsufficientCredit,
    MessageRejected,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.http import json_body, raise_for_common_status, retry_after_seconds
from providers.parrotica.facts import (
    FAILURE_CODE,
    NAME,
    envelope_code,
    envelope_failed,
    envelope_message,
)
from providers.parrotica.models import as_object

_MAX_DETAIL = 300
# A 404 on a send names the refused recipient ("contact not found: 7"); any other 404 there
# more likely means a wrong path, which the operator fixes with PARROTICA_PATHS.
_RECIPIENT_WORDS = re.compile(r"\b(contact|group|number|recipient)s?\b", re.IGNORECASE)
_NAMES_AN_ITEM = re.compile(r"\bnot found\b", re.IGNORECASE)  # i18n: not shown


class ApiKeyAuth(httpx.Auth):
    """Puts the API key in the ``x-api-key`` header; its ``repr`` never shows the key."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send the request once."""
        request.headers["x-api-key"] = self._api_key
        yield request

    def __repr__(self) -> str:
        return "ApiKeyAuth(x-api-key=***)"


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: its ``data``, ``meta`` and ``message``."""

    data: object
    meta: Mapping[str, object]
    message: str


def read_answer(response: httpx.Response, *, sending: bool, secret: str) -> Answer:
    """The answer's parts, or the project error it stands for.

    Args:
        response: Parrotica's answer.
        sending: whether the request was a send (``maybe_sent``, recipient refusals).
        secret: the API key, scrubbed from any provider text.

    """
    status = response.status_code
    if not 200 <= status < 300:
        try:
            detail = clean(envelope_message(response.json()), secret)
        except ValueError:
            detail = ""
        raise_for_common_status(response, provider=NAME, detail=detail)
        raise _client_error(status, detail, sending=sending)
    body = as_object(json_body(response, provider=NAME), what=N_("an answer"))
    if envelope_failed(status, body):
        detail = clean(envelope_message(body), secret)
        code = envelope_code(body)
        raise _body_error(
            code if code is not None and code >= FAILURE_CODE else 400,
            detail,
            response,
            sending=sending,
        )
    meta = body.get("meta")
    return Answer(
        data=body.get("data"),
        meta=meta if isinstance(meta, dict) else {},
        message=clean(envelope_message(body), secret),
    )


def clean(detail: str, secret: str) -> str:
    """Provider text safe for a chat: short, and never the API key."""
    if secret and secret in detail:
        detail = detail.replace(secret, "***")
    return detail[:_MAX_DETAIL]


def _client_error(status: int, detail: str, *, sending: bool) -> ProviderError:
    """The error for a refused request that is not auth, rate limit or a server failure."""
    code = str(status)
    if status == 402 or "insufficient" in detail.lower():
        text = (
            _("{provider}: {detail}.") if detail else _("{provider}: not enough credit.")
        ).format(provider=NAME, detail=detail)
        return InsufficientCredit(text, provider=NAME, code=code)
    if status == 404:
        quoted = _("{provider}: {detail} (HTTP 404).").format(provider=NAME, detail=detail)
        if sending and _RECIPIENT_WORDS.search(detail):
            return MessageRejected(quoted, provider=NAME, code=code)
        if _NAMES_AN_ITEM.search(detail):
            return ValidationError(quoted, provider=NAME, code=code)
        wrong_path = (
            _(
                "{provider} answered 404 Not Found ({detail}): the item does not exist, or the "
                "path is wrong (see PARROTICA_PATHS)."
            )
            if detail
            else _(
                "{provider} answered 404 Not Found: the item does not exist, or the path is "
                "wrong (see PARROTICA_PATHS)."
            )
        )
        return ValidationError(
            wrong_path.format(provider=NAME, detail=detail), provider=NAME, code=code
        )
    if 400 <= status < 500:
        refused = (
            _("{provider}: {detail} (HTTP {status}).")
            if detail
            else _("{provider}: the request was refused (HTTP {status}).")
        )
        return ValidationError(
            refused.format(provider=NAME, detail=detail, status=status), provider=NAME, code=code
        )
    return UnexpectedResponse(
        _("{provider} answered HTTP {status}.").format(provider=NAME, status=status),
        provider=NAME,
        code=code,
    )


def _body_error(
    code: int, detail: str, response: httpx.Response, *, sending: bool
) -> ProviderError:
    """The error for a 2xx answer whose envelope says it failed (its ``code`` decides)."""
    if code in (401, 403):
        refused = (
            _("{provider} refused the credentials: {detail}.")
            if detail
            else _("{provider} refused the credentials.")
        )
        return AuthError(
            refused.format(provider=NAME, detail=detail), provider=NAME, code=str(code)
        )
    if code == 429:
        return RateLimited(
            _("{provider} is rate limiting requests.").format(provider=NAME),
            provider=NAME,
            retry_after=retry_after_seconds(response),
            code="429",
        )
    if code >= 500:
        failed = (
            _("{provider} failed on its side: {detail}.")
            if detail
            else _("{provider} failed on its side.")
        )
        return ProviderUnavailable(
            failed.format(provider=NAME, detail=detail),
            provider=NAME,
            maybe_sent=sending and code != 503,
            code=str(code),
        )
    return _client_error(code, detail, sending=sending)
