"""courier's login: an ``httpx.Auth`` that logs in at the identity service and sends the token.

courier's calls carry ``Authorization: Bearer <access-token>``; the token comes from
``POST {COURIER_IDENTITY_URL}/v1/login/`` with ``{"username", "password"}`` and expires some
time later. :class:`CourierLogin` belongs to one account's adapter and:

- logs in on the first request and reuses the token (kept in memory only, never logged);
- on a 401 logs in again **once** and sends the request once more; a second 401 is returned
  as it is (the answer mapping makes it an ``AuthError``), so it never loops;
- lets concurrent requests that hit an expired token share **one** login: the login runs
  under a lock, and a request that waited finds the token newer than the one that failed it
  (a generation count) and just uses it; if the login it waited for failed, it gets that
  failure rather than trying again at once.

Login failures, none of which sends anything (``maybe_sent`` is always off)::

    400/401           → AuthError "courier refused the user name or password"
    429               → RateLimited with Retry-After
    5xx, no answer    → ProviderUnavailable with the identity service's message
    any other status  → AuthError with the identity service's own message
    no access-token   → UnexpectedResponse

The password is sent only in the login body and scrubbed from every text shown or logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

import httpx

from i18n import _
from providers.courier.facts import NAME
from providers.courier.jsonapi import clean, error_detail
from providers.courier.paths import LOGIN_PATH
from providers.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
)
from providers.http import retry_after_seconds, send_request

_TOKEN_KEYS = ("access-token", "access_token", "accessToken")


class CourierLogin(httpx.Auth):
    """Bearer auth for one courier user, logging in (again) when needed.

    Args:
        http: the shared client the login is posted with (without this auth).
        identity_url: ``COURIER_IDENTITY_URL``; a path prefix is kept.
        username: the courier user name.
        password: its password (sent only to the identity service).

    Raises:
        AuthError: the user name or password is empty.

    """

    requires_request_body = True  # a request is sent again after a new login

    def __init__(
        self, http: httpx.AsyncClient, *, identity_url: str, username: str, password: str
    ) -> None:
        if not username.strip():
            raise AuthError(
                _("{provider} needs the user name (username).").format(provider=NAME),
                provider=NAME,
            )
        if not password:
            raise AuthError(
                _("{provider} needs the password (password).").format(provider=NAME),
                provider=NAME,
            )
        self._http = http
        self._url = identity_url.rstrip("/") + LOGIN_PATH
        self.username = username.strip()
        self._password = password
        self._token: str | None = None
        self._generation = 0  # bumped by every successful login
        self._attempts = 0  # bumped by every login attempt
        self._failure: ProviderError | None = None  # the last attempt's, while it stands
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"CourierLogin(username={self.username!r}, password=***)"

    @property
    def logged_in(self) -> bool:
        """Whether a token is held."""
        return self._token is not None

    def scrub(self, text: str) -> str:
        """``text`` without the password (for courier's own error details)."""
        return clean(text, self._password)

    def forget(self) -> None:
        """Drop the token (the adapter is closed)."""
        self._token = None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: the login is asynchronous, as is every client of this bot."""
        raise RuntimeError("CourierLogin works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the token; after a 401, log in again once and send once more."""
        token, generation = await self._token_newer_than(None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # A 401 means the request was not processed: sending it again cannot send twice.
        token, _newer = await self._token_newer_than(generation)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def login(self) -> None:
        """Log in now when no token is held (``verify`` uses it to test the password first)."""
        await self._token_newer_than(None)

    async def _token_newer_than(self, stale: int | None) -> tuple[str, int]:
        """A token, newer than generation ``stale`` when one is given (it was refused)."""
        if stale is None and self._token is not None:
            return self._token, self._generation
        # The attempt this request will wait for: the one under way (the lock is held only
        # around a login), else the next one. If that one fails, this request fails with it.
        attempts = self._attempts - 1 if self._lock.locked() else self._attempts
        async with self._lock:
            token = self._token
            if token is not None and (stale is None or self._generation != stale):
                return token, self._generation  # another request logged in meanwhile
            if self._attempts != attempts and self._failure is not None:
                raise self._failure  # the login this request waited for failed
            self._attempts += 1
            self._token = None
            try:
                token = await self._login()
            except ProviderError as exc:
                self._failure = exc
                raise
            self._failure = None
            self._token = token
            self._generation += 1
            return token, self._generation

    async def _login(self) -> str:
        body = {"username": self.username, "password": self._password}
        try:
            response = await send_request(
                self._http,
                "POST",
                self._url,
                provider=NAME,
                json=body,
                headers={"Accept": "application/json"},
            )
        except ProviderUnavailable as exc:
            raise ProviderUnavailable(
                _("{provider}'s login service could not be reached: {error}").format(
                    provider=NAME, error=exc.message
                ),
                provider=NAME,
                maybe_sent=False,  # nothing of the request itself went out
                code=exc.code,
            ) from exc
        return self._read(response)

    def _read(self, response: httpx.Response) -> str:
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json()
            except ValueError:
                body = None
            token = _token_in(body)
            if token is None:
                failed = UnexpectedResponse(
                    _("{provider}'s login answered HTTP {status} without an access token.").format(
                        provider=NAME, status=status
                    ),
                    provider=NAME,
                )
                failed.maybe_sent = False
                raise failed
            return token
        detail = self.scrub(error_detail(response))
        values = {"provider": NAME, "detail": detail, "status": status, "url": self._url}
        if status in (400, 401):
            wrong = (
                _("{provider} refused the user name or password ({detail}).")
                if detail
                else _("{provider} refused the user name or password.")
            )
            raise AuthError(wrong.format(**values), provider=NAME, code=str(status))
        if status == 429:
            slow = (
                _("{provider}'s login is rate limiting requests ({detail}).")
                if detail
                else _("{provider}'s login is rate limiting requests.")
            )
            raise RateLimited(
                slow.format(**values),
                provider=NAME,
                retry_after=retry_after_seconds(response),
                code="429",
            )
        if status >= 500:
            down = (
                _("{provider}'s login service failed (HTTP {status}) ({detail}).")
                if detail
                else _("{provider}'s login service failed (HTTP {status}).")
            )
            raise ProviderUnavailable(
                down.format(**values),
                provider=NAME,
                code=str(status),
            )
        failed_login = (
            _("{provider}'s login failed: {detail}.")
            if detail
            else _(
                "{provider}'s login failed: HTTP {status} from {url} (is "
                "COURIER_IDENTITY_URL right?)."
            )
        )
        raise AuthError(failed_login.format(**values), provider=NAME, code=str(status))


def _token_in(body: Any) -> str | None:
    """``access-token`` at the top level, or inside a JSON:API ``data`` (or its attributes)."""
    candidates: list[Any] = [body]
    if isinstance(body, Mapping):
        data = body.get("data")
        candidates.append(data)
        if isinstance(data, Mapping):
            candidates.append(data.get("attributes"))
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            for key in _TOKEN_KEYS:
                value = candidate.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None
