"""The shared provider client over real sockets (127.0.0.1): a plain ``httpx.AsyncClient``.

``make_http_client`` uses httpx's own transport unless one is injected; these tests check what
goes out (headers as spelled, an ``httpx.Auth`` header, the client's defaults), gzip answers,
proxies from the environment (ignored when a transport is injected), the DEBUG event hook that
logs no query string, and that ``send_request`` tells "nothing was sent" from "it may have been
sent" for every way a real server can fail: refused, pool exhausted, dropped before or after
the headers, too slow, or answering something that is not HTTP.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.errors import ProviderUnavailable
from providers.http import make_http_client, send_request
from providers.nusasms import APIKeyAuth
from tests.fakes.httpserver import serve
from tests.secret_watch import secret

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


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


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 that reads a request's head and lets ``answer`` reply.

    Yields the base URL and the request heads received so far.
    """
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()
        await server.wait_closed()


def replying(data: bytes, *, then: str = "close") -> Answer:
    """Write ``data``, then close at once or (``then="wait"``) when the client hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if then == "wait":
            await reader.read()

    return answer


async def _post(client: httpx.AsyncClient, url: str) -> ProviderUnavailable:
    with pytest.raises(ProviderUnavailable) as caught:
        await send_request(client, "POST", url, provider="Fake", json={"a": 1})
    return caught.value


async def test_default_client_speaks_http_over_httpx_own_transport() -> None:
    async with serve(_echo) as base, make_http_client() as client:
        response = await send_request(
            client,
            "POST",
            f"{base}/nusasms_api/1.0/whatsapp/message",
            provider="Fake",
            json={"destination": "6281234567890"},
            headers={"APIKey": "k-1"},
        )
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


async def test_headers_leave_as_spelled_with_the_client_defaults() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(replying(ok)) as (base, heads), make_http_client() as client:
        response = await send_request(
            client,
            "POST",
            f"{base}/x",
            provider="Fake",
            content=b"{}",
            headers={"Accept": "a/b", "Content-Type": "c/d"},
            auth=APIKeyAuth("k-1"),
        )
    assert response.json() == {}
    lines = heads[0].split(b"\r\n")
    assert lines[0] == b"POST /x HTTP/1.1"
    for line in (b"APIKey: k-1", b"Accept: a/b", b"User-Agent: chatops-bridge/0.1"):
        assert line in lines
    assert b"Content-Type: c/d" in lines
    assert b"Content-Length: 2" in lines
    assert sum(line.lower().startswith(b"accept:") for line in lines) == 1


async def test_a_gzip_answer_is_decoded() -> None:
    body = gzip.compress(b'{"ok": true}')
    head = (
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    async with raw_server(replying(head.encode() + body)) as (base, _), make_http_client() as c:
        response = await send_request(c, "GET", f"{base}/x", provider="Fake")
    assert response.json() == {"ok": True}


async def test_answers_are_logged_at_debug_without_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(replying(ok)) as (base, _), make_http_client() as client:
        with caplog.at_level(logging.DEBUG, logger="providers.http"):
            url = f"{base}/api/command?password={secret('s3cret')}"
            await send_request(client, "GET", url, provider="F")
    [record] = [r for r in caplog.records if r.name == "providers.http"]
    assert record.getMessage() == "GET 127.0.0.1/api/command -> HTTP 200"
    assert "s3cret" not in caplog.text


async def test_a_connection_dropped_before_the_whole_body_may_have_sent_it() -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"error"'
    async with raw_server(replying(cut)) as (base, _), make_http_client() as client:
        error = await _post(client, f"{base}/send")
    assert error.maybe_sent is True
    assert "broke off" in error.message


async def test_an_answer_that_is_not_http_may_have_sent_it() -> None:
    garbage = replying(b"garbage, not HTTP\r\n\r\n")
    async with raw_server(garbage) as (base, _), make_http_client() as client:
        error = await _post(client, f"{base}/send")
    assert error.maybe_sent is True
    assert "broke off" in error.message


async def test_a_body_that_stops_coming_is_a_timeout_that_may_have_sent_it() -> None:
    slow = replying(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", then="wait")
    async with raw_server(slow) as (base, _), make_http_client(timeout=0.05) as client:
        error = await _post(client, f"{base}/send")
    assert error.maybe_sent is True
    assert "did not answer in time" in error.message


async def test_no_pooled_connection_in_time_means_nothing_was_sent() -> None:
    entered = asyncio.Event()

    async def busy_for_a_while(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.sleep(0.5)
        return httpx.Response(200, json={})

    quick_pool = httpx.Timeout(5.0, pool=0.05)
    async with serve(busy_for_a_while) as base, make_http_client(max_connections=1) as client:
        busy = asyncio.create_task(send_request(client, "GET", f"{base}/slow", provider="Fake"))
        await asyncio.wait_for(entered.wait(), 5)  # the only connection is taken
        with pytest.raises(ProviderUnavailable) as caught:
            await send_request(
                client, "POST", f"{base}/send", provider="Fake", content=b"{}", timeout=quick_pool
            )
        assert (await busy).status_code == 200
    assert caught.value.maybe_sent is False
    assert "could not be reached" in caught.value.message


async def test_an_http_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(replying(ok)) as (proxy, heads):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with make_http_client() as client:
            await send_request(client, "GET", "http://provider.test/v1/x?a=1", provider="Fake")
    assert heads[0].startswith(b"GET http://provider.test/v1/x?a=1 HTTP/1.1\r\n")


async def test_no_proxy_hosts_are_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with (
        raw_server(replying(ok)) as (proxy, via_proxy),
        raw_server(replying(ok)) as (base, direct),
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with make_http_client() as client:
            await send_request(client, "GET", f"{base}/x", provider="Fake")
    assert via_proxy == []
    assert direct[0].startswith(b"GET /x HTTP/1.1")


async def test_an_injected_transport_ignores_proxies_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{_closed_port()}")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    async with make_http_client(transport=httpx.MockTransport(handler)) as client:
        response = await send_request(client, "GET", "http://fake.test/x", provider="Fake")
    assert response.json() == {"ok": True}
