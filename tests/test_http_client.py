"""The shared provider client over real sockets (127.0.0.1): httpx API on the aiohttp transport.

``make_http_client`` uses the httpx-aiohttp transport unless a transport is injected; these
tests check that it really talks HTTP, and that ``send_request`` still tells "nothing was sent"
from "it may have been sent" on that transport, whose own error mapping blurs the two.
"""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from providers.errors import ProviderUnavailable
from providers.http import make_http_client, send_request
from tests.fakes.httpserver import serve


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        json={
            "method": request.method,
            "path": request.url.path,
            "body": json.loads(request.content),
        },
        headers={"X-Seen-Key": request.headers.get("APIKey", "")},
    )


def _hang_up(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("dropped after reading the request", request=request)


async def _slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.3)
    return httpx.Response(200, json={})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_default_client_speaks_http_over_the_aiohttp_transport() -> None:
    async with serve(_echo) as base, make_http_client() as client:
        response = await send_request(
            client,
            "POST",
            f"{base}/nusasms_api/1.0/whatsapp/message",
            provider="Fake",
            json={"destination": "6281234567890"},
            headers={"APIKey": "k-1"},
        )
    assert type(client._transport).__name__ == "AiohttpTransport"
    assert response.status_code == 201
    assert response.json() == {
        "method": "POST",
        "path": "/nusasms_api/1.0/whatsapp/message",
        "body": {"destination": "6281234567890"},
    }
    assert response.headers["X-Seen-Key"] == "k-1"


async def test_an_injected_transport_is_used_instead() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    async with make_http_client(transport=httpx.MockTransport(handler)) as client:
        response = await send_request(client, "GET", "http://fake.test/x", provider="Fake")
    assert response.json() == {"ok": True}
    assert seen == ["http://fake.test/x"]


async def test_a_connection_dropped_after_the_request_may_have_sent_it() -> None:
    async with serve(_hang_up) as base, make_http_client() as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await send_request(client, "POST", f"{base}/send", provider="Fake", json={})
    assert caught.value.maybe_sent is True
    assert "broke off" in caught.value.message


async def test_nothing_listening_means_nothing_was_sent() -> None:
    async with make_http_client(connect_timeout=2.0) as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await send_request(
                client, "POST", f"http://127.0.0.1:{_closed_port()}/send", provider="Fake", json={}
            )
    assert caught.value.maybe_sent is False
    assert "could not be reached" in caught.value.message


async def test_a_read_timeout_may_have_sent_it() -> None:
    async with serve(_slow) as base, make_http_client(timeout=0.05) as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await send_request(client, "POST", f"{base}/send", provider="Fake", json={})
    assert caught.value.maybe_sent is True
    assert "did not answer in time" in caught.value.message
