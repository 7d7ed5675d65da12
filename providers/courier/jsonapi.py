"""courier's JSON:API: request documents, reading answers, errors, and walking pages.

Requests are ``{"data": {"type": ..., "attributes": {...}}}`` with kebab-case attributes and
``Accept: application/vnd.api+json``; answers are ``{"data": {"id", "type", "attributes"}}``
(or a list of them). Every answer passes :func:`read_answer`, the one place where courier's
HTTP statuses and JSON:API errors (``{"errors": [{code, detail, source, status}]}``) become
:mod:`providers.errors` classes, with the errors' ``detail`` in the text shown to the chat::

    401           → AuthError (the auth already logged in again once; see auth.py)
    403           → AuthError naming the refused permission
    404           → ValidationError naming what was not found
    400/409/422   → ValidationError with courier's detail (and the attribute it names)
    429           → RateLimited with ``Retry-After``
    5xx           → ProviderUnavailable (``maybe_sent`` on a create, except 503)
    a malformed body on a 2xx → UnexpectedResponse

Lists are paged with ``page[limit]`` / ``page[offset]``; :func:`walk` asks page after page
until one comes back short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from i18n import N_, _
from providers.courier.facts import MAX_PAGES, NAME, PAGE_LIMIT
from providers.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    ValidationError,
)
from providers.http import retry_after_seconds

MEDIA_TYPE = "application/vnd.api+json"
# Answers come as JSON:API; request bodies go as application/json (httpx sets it for a JSON
# body), which is how courier documents them.
HEADERS: Mapping[str, str] = {"Accept": MEDIA_TYPE}
_MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class Resource:
    """One JSON:API resource object."""

    id: str
    type: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


def document(kind: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A create document: ``{"data": {"type": kind, "attributes": attributes}}``."""
    return {"data": {"type": kind, "attributes": dict(attributes)}}


def page_params(offset: int, limit: int = PAGE_LIMIT) -> dict[str, int]:
    """The paging query of one page."""
    return {"page[limit]": limit, "page[offset]": offset}


async def walk(
    fetch: Callable[[Mapping[str, int]], Awaitable[list[Resource]]],
    *,
    limit: int = PAGE_LIMIT,
    max_items: int | None = None,
    max_pages: int = MAX_PAGES,
) -> list[Resource]:
    """Every item of a paged list: page after page until a short (or empty) one.

    Args:
        fetch: asks for one page given its paging query (:func:`page_params`).
        limit: items per page.
        max_items: stop once this many were read (the rest is not asked for).
        max_pages: stop after this many pages whatever the server says.

    """
    items: list[Resource] = []
    for page in range(max_pages):
        batch = await fetch(page_params(page * limit, limit))
        items.extend(batch)
        if max_items is not None and len(items) >= max_items:
            return items[:max_items]
        if len(batch) < limit:
            break
    return items


def read_answer(
    response: httpx.Response,
    *,
    what: str,
    item_id: str | None = None,
    sending: bool = False,
    scrub: Callable[[str], str] | None = None,
) -> Any:
    """The decoded body of a 2xx answer, or the project error the answer stands for.

    Args:
        response: courier's answer.
        what: what was asked for, for messages ("text", "organization").
        item_id: the id asked for, named when it is not found.
        sending: whether the request creates something (``maybe_sent`` on a 5xx).
        scrub: takes what must never be shown (the password) out of courier's details.

    """
    status = response.status_code
    if 200 <= status < 300:
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise UnexpectedResponse(
                _("{provider} answered HTTP {status} with a body that is not JSON.").format(
                    provider=NAME, status=status
                ),
                provider=NAME,
            ) from exc
    raise error_for(response, what=what, item_id=item_id, sending=sending, scrub=scrub)


def error_for(
    response: httpx.Response,
    *,
    what: str,
    item_id: str | None = None,
    sending: bool = False,
    scrub: Callable[[str], str] | None = None,
) -> ProviderError:
    """The project error for a refused request (see the module's table)."""
    status = response.status_code
    detail = error_detail(response)
    detail = scrub(detail) if scrub is not None else clean(detail, "")
    code = str(status)
    # Each message has a form with courier's own words and one without, never glued.
    values = {"provider": NAME, "what": _(what), "id": item_id, "detail": detail, "status": status}
    if status == 401:
        refused = (
            _("{provider} refused the login: {detail} (HTTP 401).")
            if detail
            else _("{provider} refused the login (HTTP 401).")
        )
        return AuthError(refused.format(**values), provider=NAME, code=code)
    if status == 403:
        forbidden = (
            _("{provider} does not allow this user to use the {what}: {detail} (HTTP 403).")
            if detail
            else _("{provider} does not allow this user to use the {what} (HTTP 403).")
        )
        return AuthError(forbidden.format(**values), provider=NAME, code=code)
    if status == 404:
        if item_id:
            missing = (
                _("{provider} has no {what} {id} visible to this user: {detail}.")
                if detail
                else _("{provider} has no {what} {id} visible to this user.")
            )
        else:
            missing = (
                _("{provider} has no {what} visible to this user: {detail}.")
                if detail
                else _("{provider} has no {what} visible to this user.")
            )
        return ValidationError(missing.format(**values), provider=NAME, code=code)
    if status == 429:
        slow = (
            _("{provider} is rate limiting requests: {detail}.")
            if detail
            else _("{provider} is rate limiting requests.")
        )
        return RateLimited(
            slow.format(**values),
            provider=NAME,
            retry_after=retry_after_seconds(response),
            code=code,
        )
    if status >= 500:
        failed = (
            _("{provider} failed on its side (HTTP {status}): {detail}.")
            if detail
            else _("{provider} failed on its side (HTTP {status}).")
        )
        return ProviderUnavailable(
            failed.format(**values),
            provider=NAME,
            # A 503 is refused at the door; any other 5xx may come after the write.
            maybe_sent=sending and status != 503,
            code=code,
        )
    refused = (
        _("{provider} refused the {what}: {detail} (HTTP {status}).")
        if detail
        else _("{provider} refused the {what}: the request was refused (HTTP {status}).")
    )
    return ValidationError(refused.format(**values), provider=NAME, code=code)


def error_detail(response: httpx.Response) -> str:
    """The ``detail`` (or ``title``) of each JSON:API error, with the attribute it names.

    ``{"detail": "not E.164", "source": {"pointer": "/data/attributes/target"}}`` reads
    ``target: not E.164``. Bodies that are not JSON:API give their ``message``/``detail``, or
    nothing.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    errors = body.get("errors")
    if not isinstance(errors, list):
        for key in ("detail", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""
    parts: list[str] = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        text = error.get("detail") or error.get("title") or error.get("code") or ""
        if not isinstance(text, str) or not text.strip():
            continue
        where = _source(error.get("source"))
        part = text.strip()
        parts.append(f"{where}: {part}" if where and where not in part else part)
    return "; ".join(dict.fromkeys(parts))


def _source(source: object) -> str:
    if not isinstance(source, Mapping):
        return ""
    pointer = source.get("pointer")
    if isinstance(pointer, str) and pointer.strip("/"):
        return pointer.rstrip("/").rsplit("/", 1)[-1]
    parameter = source.get("parameter")
    return parameter if isinstance(parameter, str) else ""


def clean(detail: str, secret: str) -> str:
    """Provider text safe for a chat: short, and never the password."""
    if secret and secret in detail:
        detail = detail.replace(secret, "***")
    return detail[:_MAX_DETAIL]


# -- reading resources ------------------------------------------------------------------------


def read_resource(body: Any, *, what: str) -> Resource:
    """The one resource of ``{"data": {...}}``.

    Raises:
        UnexpectedResponse: no ``data`` object, or one without an id or attributes object.

    """
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        raise _malformed(
            what,
            N_(
                "{provider}'s answer about the {what} has no data object (not the documented "
                "JSON:API shape)."
            ),
        )
    return _resource(body["data"], what=what)


def read_collection(body: Any, *, what: str) -> list[Resource]:
    """The resources of ``{"data": [...]}``.

    Raises:
        UnexpectedResponse: ``data`` is not a list, or an item is malformed.

    """
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise _malformed(
            what,
            N_(
                "{provider}'s answer about the {what} has no data list (not the documented "
                "JSON:API shape)."
            ),
        )
    return [_resource(item, what=what) for item in body["data"]]


def _resource(raw: object, *, what: str) -> Resource:
    if not isinstance(raw, Mapping):
        raise _malformed(
            what,
            N_(
                "{provider}'s answer about the {what} holds an item that is not an object (not "
                "the documented JSON:API shape)."
            ),
        )
    ident = raw.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int) or not str(ident).strip():
        raise _malformed(
            what,
            N_(
                "{provider}'s answer about the {what} holds an item without an id (not the "
                "documented JSON:API shape)."
            ),
        )
    attributes = raw.get("attributes", {})
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise _malformed(
            what,
            N_(
                "{provider}'s answer about the {what} holds an item whose attributes are not an "
                "object (not the documented JSON:API shape)."
            ),
        )
    kind = raw.get("type")
    return Resource(str(ident).strip(), kind if isinstance(kind, str) else "", attributes)


def _malformed(what: str, problem: str) -> UnexpectedResponse:
    """``problem``: a whole message (marked ``N_``) with ``{provider}`` and ``{what}``."""
    return UnexpectedResponse(_(problem).format(provider=NAME, what=_(what)), provider=NAME)
