"""Per-account request pacing shared by every chat that uses the same provider account.

NusaSMS allows one request per 50 ms per account; several chats may share one key and a bulk
send fans out, so the pacer is keyed by the account, not by the chat or the adapter instance.
Keys are hashed so credentials never sit in memory as dictionary keys.

What must hold is a gap of at least ``floor`` (the documented minimum) between the moments the
*provider* sees two requests. This process only chooses when a request is let go, and between
that and the provider's clock lie the event loop (building the request, a busy loop delaying
the write by a few ms), the network and the provider's own scheduling. Each of those can bring
two requests closer there than they were here, so :class:`SlotPacer` anchors request N on
evidence about request N-1 that the provider's clock cannot be behind:

* **N-1's answer** (*near* mode). The provider stamped N-1 before it answered, so if N is
  written ``floor`` after the answer arrived, the provider sees N at least ``floor`` after N-1,
  whatever the jitter on either side. No headroom is needed, but it costs one round trip per
  request, so it is used only while the provider answers within the pacing headroom
  (``interval - floor``): then waiting for the answer is no slower than the headroom. The
  round trip used is the smallest of the last few: a near provider is sometimes slow (a busy
  loop, a loaded machine) but never consistently, a far one is never fast.
* **When N-1's bytes were written** (*far* mode), when the provider is further away: waiting
  for answers would cut throughput to one request per round trip, so requests stay pipelined
  on a schedule ``interval`` apart (drift-free: the next slot follows the previous *slot*, so
  a late wake-up does not push later ones), and N is never written less than ``floor`` after
  N-1 was. A busy event loop delaying a write therefore cannot bring two requests closer; only
  the network's jitter can, and ``interval - floor`` is the margin for that. A 429 that still
  happens is the adapter's to retry after its ``Retry-After``.

The HTTP client reports writes and answers through the hooks of :func:`pacing_trace_config`
(aiohttp calls them right before the bytes go to the socket and as soon as the answer's headers
are read). The write hook also holds the bytes until the request's earliest moment, so the
pacer can let a request go ``WRITE_LEAD`` early: that absorbs the timer's millisecond
granularity and the time spent building the request, instead of adding them to every gap.
Without reports (another transport, e.g. ``httpx.MockTransport`` in tests) nothing is let go
early, answers are taken when the request's ``async with`` block ends, and writes when the
request was let go: the same guarantees, a little more slowly.

An answer (or write report) that has not come ``patience`` after its request was let go is no
longer waited for; the next request is then anchored on the moment the waiting stopped.
Requests are let go in the order they asked (a FIFO lock).

Measured (``python -m bench ratelimit``, 1,000 sends against a fake enforcing 50 ms, loaded
2-core VM): 1.03 × the ideal and no 429, where a schedule 5 % wider than the floor, measured
from when requests were let go, gave 1.06-1.07 × and 8-9 429s: on this machine a request can
reach the provider 5-30 ms late while the next one is on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from multidict import CIMultiDict

ROUND_TRIPS_KEPT = 64  # ~3 s: a near provider answers fast at least once through a busy spell
PATIENCE_FLOORS = 5  # an answer this late is a stall, not jitter
WRITE_LEAD = 0.005  # covers timer granularity (1 ms), building the request, a busy loop


@dataclass(slots=True, eq=False)
class _Request:
    """One paced request: its earliest write, when it was let go, written and answered."""

    pacer: SlotPacer
    not_before: float
    left: float
    written: float | None = None
    answered: float | None = None
    sent: asyncio.Event = field(default_factory=asyncio.Event)  # written, or over
    over: asyncio.Event = field(default_factory=asyncio.Event)  # answered, or failed
    token: Token[_Request | None] | None = None


_CURRENT: ContextVar[_Request | None] = ContextVar("paced_request", default=None)


async def request_writing() -> None:
    """Hold the current paced request's first bytes until its earliest moment; note the write.

    For the HTTP client to await right before the request goes to the socket; outside a paced
    request (or on a later chunk of its body) it returns at once.
    """
    request = _CURRENT.get()
    if request is None or request.written is not None:
        return
    loop = asyncio.get_running_loop()
    await _sleep_until(request.not_before)
    request.written = loop.time()
    request.pacer._writes_reported = True
    request.sent.set()


def response_arrived() -> None:
    """Note that the current paced request's answer has arrived (its headers were read)."""
    request = _CURRENT.get()
    if request is not None and request.answered is None:
        request.pacer._answered(request, asyncio.get_running_loop().time(), answer=True)


async def _sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the loop's clock, to a fraction of a millisecond.

    Timers fire up to 1 ms late (epoll rounds up), so the last millisecond is spent yielding
    to the loop, which keeps serving other tasks meanwhile.
    """
    loop = asyncio.get_running_loop()
    coarse = deadline - loop.time() - 0.001
    if coarse > 0:
        await asyncio.sleep(coarse)
    while loop.time() < deadline:  # noqa: ASYNC110 - no event marks a moment in time
        await asyncio.sleep(0)


class SlotPacer:
    """An async context manager around one request: provider-side gaps of at least ``floor``.

    Args:
        interval: the schedule's spacing while the provider is far (see the module); 0 means
            no pacing.
        floor: the provider's documented minimum gap; defaults to ``interval``.
        patience: how long to wait for the previous request's answer or write report;
            defaults to ``PATIENCE_FLOORS`` × ``floor``.

    """

    def __init__(
        self, interval: float, *, floor: float | None = None, patience: float | None = None
    ) -> None:
        self.interval = interval
        self.floor = interval if floor is None else min(floor, interval)
        self.patience = self.floor * PATIENCE_FLOORS if patience is None else patience
        self._lock = asyncio.Lock()  # FIFO: requests are let go in the order they asked
        self._last: _Request | None = None
        self._last_target = float("-inf")
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._writes_reported = False

    @property
    def near(self) -> bool:
        """Whether the provider answers within the headroom, so its answers are waited for."""
        headroom = self.interval - self.floor
        if headroom <= 0:
            return False
        return not self._round_trips or min(self._round_trips) <= headroom

    @property
    def reports_writes(self) -> bool:
        """Whether the HTTP client reports writes (and holds them), so requests go early."""
        return self._writes_reported

    async def __aenter__(self) -> None:
        if self.interval <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            target = max(loop.time(), self._last_target + self.interval)
            last = self._last
            if last is None:
                not_before = target
            elif self.near:
                not_before = await self._waited(last, last.over) + self.floor
                target = not_before  # if the provider turns far, the schedule starts here
            else:
                written = last.left
                if self._writes_reported:
                    written = await self._waited(last, last.sent)
                not_before = max(target, written + self.floor)
            # Reported writes are held until ``not_before`` by the write hook, so the request
            # can go a little early; unreported ones are written after they are let go, and a
            # timer never fires early.
            lead = WRITE_LEAD if self._writes_reported else 0.0
            delay = not_before - lead - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_target = target
            request = _Request(self, not_before=not_before, left=loop.time())
            request.token = _CURRENT.set(request)
            self._last = request

    async def _waited(self, last: _Request, event: asyncio.Event) -> float:
        """When the previous request was written or answered (per ``event``), or gave up on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(last.left + self.patience):
                await event.wait()
        if event is last.sent and last.written is not None:
            return last.written
        if last.answered is not None:  # answered, or failed before any write was reported
            return last.answered
        return asyncio.get_running_loop().time()

    def _answered(self, request: _Request, now: float, *, answer: bool) -> None:
        request.answered = now
        if answer:  # a round trip says how far away the provider is
            start = request.written if request.written is not None else request.left
            self._round_trips.append(now - start)
        request.sent.set()
        request.over.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        request = _CURRENT.get()
        if request is None or request.pacer is not self:
            return None
        if request.token is not None:
            _CURRENT.reset(request.token)
        if request.answered is None:
            self._answered(request, asyncio.get_running_loop().time(), answer=exc_type is None)
        return None


class AccountLimiters:
    """Hands out one pacer per (provider, account)."""

    def __init__(self) -> None:
        self._pacers: dict[str, SlotPacer] = {}

    def get(
        self, provider: str, account_key: str, *, interval: float, floor: float | None = None
    ) -> SlotPacer:
        """The pacer keeping this account's requests at least ``floor`` apart at the provider.

        ``interval`` is the schedule's spacing while the provider is far and ``floor`` the
        documented minimum gap (see :class:`SlotPacer`); an ``interval`` of 0 means no pacing
        (a local fake or a provider without a limit).
        """
        digest = hashlib.sha256(f"{provider}\0{account_key}".encode()).hexdigest()
        pacer = self._pacers.get(digest)
        if pacer is None:
            pacer = SlotPacer(interval, floor=floor)
            self._pacers[digest] = pacer
        return pacer


def pacing_trace_config() -> aiohttp.TraceConfig:
    """The aiohttp hooks reporting each paced request's write and answer to its pacer."""
    config = aiohttp.TraceConfig()
    config.on_request_headers_sent.append(_on_headers_sent)
    config.on_request_chunk_sent.append(_on_chunk_sent)
    config.on_request_end.append(_on_request_end)
    return config


def _has_body(headers: CIMultiDict[str]) -> bool:
    length = headers.get("Content-Length")
    return "Transfer-Encoding" in headers or (length is not None and length != "0")


async def _on_headers_sent(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    # With a body, aiohttp holds the headers back and writes them with its first chunk.
    if not _has_body(params.headers):
        await request_writing()


async def _on_chunk_sent(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    _params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    await request_writing()


async def _on_request_end(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    _params: aiohttp.TraceRequestEndParams,
) -> None:
    response_arrived()
