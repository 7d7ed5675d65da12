"""Per-account pacing and the 429 retry: :func:`paced_request`, the one helper adapters send with.

NusaSMS allows one request per 50 ms per account; several chats may share one key and a bulk
send fans out, so a pacer is kept per account (:class:`AccountLimiters`), not per chat or
adapter instance. Keys are hashed so credentials never sit in memory as dictionary keys.

:func:`paced_request` sends one request in its account's turn and, when the answer is 429,
holds the whole account back for the answer's ``Retry-After`` (a 429 means the request was not
processed, so sending it again cannot send twice) and sends it again, up to ``max_retries``
times. Transport failures become ``ProviderUnavailable`` (:func:`providers.http.send_request`).

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
  happens is retried.

Writes and answers are reported through httpx's public ``trace`` request extension
(:meth:`Slot.trace`; httpcore awaits it around each step of a request):
``*.send_request_headers.started`` comes right before the first bytes go to the socket, and the
callback holds them there until the request's earliest moment; ``*.send_request_headers.complete``
is the write and ``*.receive_response_headers.complete`` the answer. Because the bytes are held,
a request can be let go ``WRITE_LEAD`` early: that absorbs the timer's millisecond granularity
and the time httpx spends building the request, instead of adding them to every gap. Without
reports (another transport, e.g. ``httpx.MockTransport`` in tests) nothing is let go early,
answers are taken when the request's slot is left, and writes when the request was let go: the
same guarantees, a little more slowly.

**Several replicas.** One account's requests may leave from several processes. A pacer given a
:class:`SharedPace` (the bot passes one backed by Redis or PostgreSQL, ``storage/pace.py``)
also reserves each request's moment on the account's shared schedule before letting it go:
the reservation is ``spacing`` (the far-mode ``interval``, at least ``SHARED_SPACING`` ×
``floor``) after every other replica's and no earlier than the moment this process chose, so
the provider sees the account's requests that far apart whichever replica sends them (one
limiter, a per-process and a shared backend). While other replicas run (``SharedPace.active``;
alone, a replica paces as one process does) such a pacer stays on the schedule (*far* mode):
another replica's answers cannot anchor it. Two rules keep the schedule tight:

* **Never early.** The backend reads its clock last (Redis ``TIME`` in the script, PostgreSQL
  ``clock_timestamp()`` in ``RETURNING``) and answers how long until the slot, so the slot is
  counted from the answer's arrival: late by the answer's transit, never early. (Counting it
  from the middle of the round trip, as before, let a request go up to half a round trip
  early: 4-10 ms on a loaded machine, a 429 for the neighbour.)
* **Never late beyond the margin.** The moment may also be as early as the answer minus the
  round trip (where in it the clock was read is unknown), so a request that reaches its write
  more than ``spacing - floor`` after *that* (a starved process, a slow reservation) would
  come too close to the next replica's, already on its way: it gives the moment up and
  reserves a new one (:meth:`SlotPacer.keep_slot`, at most ``RESLOTS`` times, then it goes
  and a 429 is retried). The margin is the far-mode headroom, or the backend's typical round
  trip plus ``WAKE_SLACK`` when that is wider (:attr:`SlotPacer.spacing`).

The shared schedule uses the backend server's clock, so the replicas' clocks need not agree.
``bench/replicas.py`` measures it.

An answer (or write report) that has not come ``patience`` after its request was let go is no
longer waited for; the next request is then anchored on the moment the waiting stopped.
Requests are let go in the order they asked (a FIFO lock).

Measured (``python -m bench ratelimit``, 1,000 sends against a fake enforcing 50 ms on
127.0.0.1, 2-core VM shared with other jobs; ``bench/RESULTS.md`` §6): 1.028-1.035 × the ideal
with zero 429s (mean gap 51.4-51.7 ms, smallest 50.6-50.9 ms), and 1.051 once while another
test suite loaded both cores. The aiohttp transport this replaced gave 1.019 on the same
machine: httpcore writes a request's headers and body separately, and the fake wakes for each,
which adds ~0.5 ms to every round trip. Without the write hold (``WRITE_LEAD`` = 0) 400 sends
gave 1.068-1.072, so the hold stays. Far mode alone cannot meet 1.05 by construction (its
schedule is the interval, 1.05 × the floor): the benchmark passes in near mode only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx

from providers.http import retry_after_seconds, send_request

log = logging.getLogger(__name__)

ROUND_TRIPS_KEPT = 64  # ~3 s: a near provider answers fast at least once through a busy spell
PATIENCE_FLOORS = 5  # an answer this late is a stall, not jitter
WRITE_LEAD = 0.005  # covers timer granularity (1 ms), building the request, a busy loop
# Several replicas: the shared schedule's least spacing, × the floor. The far-mode interval
# (the documented minimum plus the provider's headroom) is used when it is wider; a request
# later than ``spacing - floor`` after its slot takes a new one, so the margin is that only.
SHARED_SPACING = 1.03
RESLOTS = 3  # new slots a late request takes before it goes anyway (a 429 is retried)
RESERVE_RTTS_KEPT = 16  # the shared schedule's recent round trips
RESERVE_LEAD = 1.25  # × a typical round trip: how far ahead a reservation asks, at least
WAKE_SLACK = 0.001  # seconds a write may follow its moment beyond the reservation's round trip

_NO_EXTENSIONS: Mapping[str, Any] = {}


class SharedPace(Protocol):
    """The shared schedule of provider accounts across replicas (Redis or the database).

    ``active`` says whether other replicas run now: alone, a replica paces as one process
    does (no round trip per request, answers anchor the next request).
    """

    active: bool

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        """Reserve the account's next request moment; the seconds from now until it.

        The moment is at least ``earliest`` seconds from now and ``interval`` after the
        moment reserved before (by any replica). ``key`` is a hash, never a credential.
        "Now" is read as late as the backend can (the answer is counted from its arrival),
        and the result is negative when the moment passed before the answer was sent.
        """
        ...


class Slot:
    """One paced request: its earliest write, when it was let go, written and answered.

    Pass :attr:`extensions` to the request (``client.request(..., extensions=...)``) so that
    httpcore reports the write and the answer to :meth:`trace`.
    """

    __slots__ = (
        "answered",
        "deadline",
        "left",
        "not_before",
        "over",
        "pacer",
        "sent",
        "written",
    )

    def __init__(
        self,
        pacer: SlotPacer | None,
        *,
        not_before: float,
        left: float,
        deadline: float = float("inf"),
    ) -> None:
        self.pacer = pacer
        self.not_before = not_before
        self.deadline = deadline  # the shared schedule: its latest write, else a new slot
        self.left = left
        self.written: float | None = None
        self.answered: float | None = None
        self.sent = asyncio.Event()  # written, or over
        self.over = asyncio.Event()  # answered, or failed

    @property
    def extensions(self) -> Mapping[str, Any]:
        """The request extensions that report to this slot (none for an unpaced request)."""
        return _NO_EXTENSIONS if self.pacer is None else {"trace": self.trace}

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """The ``trace`` callback: hold the first write until its moment; note write and answer.

        httpcore names events ``<http11|http2>.<step>.<started|complete|failed>``; the
        connection-level ones (``connection.*``) and later steps are ignored.
        """
        pacer = self.pacer
        if pacer is None:
            return
        if event.endswith(".send_request_headers.started"):
            if self.written is None:
                await _sleep_until(self.not_before)
                await pacer.keep_slot(self)
        elif event.endswith(".send_request_headers.complete"):
            if self.written is None:
                self.written = asyncio.get_running_loop().time()
                pacer.reports_writes = True
                self.sent.set()
        elif event.endswith(".receive_response_headers.complete") and self.answered is None:
            pacer.answered(self, asyncio.get_running_loop().time(), answer=True)


def _typical(samples: deque[float]) -> float:
    """A high but not extreme value of ``samples`` (the upper quartile; 0 when none)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[(len(ordered) * 3) // 4]


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
    """Hands out slots (:meth:`slot`) whose requests the provider sees ``floor`` apart.

    Args:
        interval: the schedule's spacing while the provider is far (see the module); 0 means
            no pacing (only a 429's hold-off is kept).
        floor: the provider's documented minimum gap; defaults to ``interval``.
        patience: how long to wait for the previous request's answer or write report;
            defaults to ``PATIENCE_FLOORS`` × ``floor``.
        shared: the schedule shared with other replicas (None: this process alone).
        key: the account's key on the shared schedule (a hash).

    """

    def __init__(
        self,
        interval: float,
        *,
        floor: float | None = None,
        patience: float | None = None,
        shared: SharedPace | None = None,
        key: str = "",
    ) -> None:
        self.interval = interval
        self.shared = shared  # several replicas: the account's schedule they all keep to
        self.key = key
        self.floor = interval if floor is None else min(floor, interval)
        self.patience = self.floor * PATIENCE_FLOORS if patience is None else patience
        self.reports_writes = False  # set once the client reports a write (see Slot.trace)
        self.reslotted = 0  # requests that gave their shared slot up, too late for it
        self._reserve_rtts: deque[float] = deque(maxlen=RESERVE_RTTS_KEPT)
        self._lock = asyncio.Lock()  # FIFO: requests are let go in the order they asked
        self._last: Slot | None = None
        self._last_target = float("-inf")
        self._resume_at = float("-inf")  # a 429's Retry-After holds the whole account
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)

    @property
    def near(self) -> bool:
        """Whether the provider answers within the headroom, so its answers are waited for."""
        headroom = self.interval - self.floor
        if headroom <= 0:
            return False
        return not self._round_trips or min(self._round_trips) <= headroom

    def hold_off(self, seconds: float) -> None:
        """Let no request of this account go for ``seconds`` (the provider's ``Retry-After``)."""
        resume = asyncio.get_running_loop().time() + seconds
        self._resume_at = max(self._resume_at, resume)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Wait for this account's turn; the request is sent inside the ``async with``.

        Leaving the block counts as the answer unless the trace reported one already (a
        failure counts too, but tells nothing about how far the provider is).
        """
        slot = await self._take()
        try:
            yield slot
        except BaseException:
            if slot.answered is None and slot.pacer is not None:
                self.answered(slot, asyncio.get_running_loop().time(), answer=False)
            raise
        if slot.answered is None and slot.pacer is not None:
            self.answered(slot, asyncio.get_running_loop().time(), answer=True)

    async def _take(self) -> Slot:
        loop = asyncio.get_running_loop()
        if self.interval <= 0:
            if loop.time() < self._resume_at:
                await asyncio.sleep(self._resume_at - loop.time())
            return Slot(None, not_before=0.0, left=loop.time())
        async with self._lock:
            if loop.time() < self._resume_at:
                await asyncio.sleep(self._resume_at - loop.time())
            target = max(loop.time(), self._last_target + self.interval)
            last = self._last
            if last is None:
                not_before = target
            elif self.near and not (self.shared is not None and self.shared.active):
                not_before = await self._waited(last, last.over) + self.floor
                target = not_before  # if the provider turns far, the schedule starts here
            else:
                written = last.left
                if self.reports_writes:
                    written = await self._waited(last, last.sent)
                not_before = max(target, written + self.floor)
            deadline = float("inf")
            if self.shared is not None and self.shared.active:
                # The account's turn among all replicas, no earlier than this process's.
                try:
                    not_before, deadline = await self._reserve(not_before)
                except Exception as exc:
                    # The shared schedule cannot be reached (Redis or the database down, a
                    # connection closed): this request keeps this process's pace; a 429
                    # that may cost is retried, a send that failed here would be lost.
                    log.warning("the shared provider pace failed (%s): pacing locally", exc)
            # Reported writes are held until ``not_before`` by the trace callback, so the
            # request can go a little early; unreported ones are written after they are let
            # go, and a timer never fires early.
            lead = WRITE_LEAD if self.reports_writes else 0.0
            delay = not_before - lead - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_target = target
            slot = Slot(self, not_before=not_before, left=loop.time(), deadline=deadline)
            if not self.reports_writes:  # no trace callback will check it before the write
                await self.keep_slot(slot)
            self._last = slot
            return slot

    @property
    def spacing(self) -> float:
        """The shared schedule's spacing of this account's requests.

        Its margin over the floor must hold the reservation's round trip (how early the
        moment may be, see :meth:`_reserve`) and a wake-up's delay: a slow backend widens it.
        """
        typical = _typical(self._reserve_rtts)
        return max(self.interval, self.floor * SHARED_SPACING, self.floor + typical + WAKE_SLACK)

    async def _reserve(self, earliest: float) -> tuple[float, float]:
        """A moment on the shared schedule no earlier than ``earliest``; its latest write.

        The backend read its clock last, so its wait counts from the answer's arrival: the
        moment is late by the answer's transit, never early.
        """
        assert self.shared is not None
        loop = asyncio.get_running_loop()
        asked = loop.time()
        # No earlier than the answer can be back: a moment passed before it arrives would
        # be late at once (and taken again by keep_slot).
        reach = RESERVE_LEAD * _typical(self._reserve_rtts)
        spacing = self.spacing
        wait = await self.shared.reserve(self.key, spacing, max(earliest - asked, reach))
        answered = loop.time()
        at = answered + wait  # the wait is negative when the moment passed meanwhile
        self._reserve_rtts.append(answered - asked)
        # The backend read its clock somewhere in the round trip: the moment is ``at`` at the
        # latest (so the write is never early) and ``at - round trip`` at the earliest (so
        # the latest write allowed counts from there).
        return at, at - (answered - asked) + spacing - self.floor

    async def keep_slot(self, slot: Slot) -> None:
        """Right before the write: a request too late for its shared slot takes a new one.

        Written later than ``spacing - floor`` after its moment, it would reach the provider
        less than ``floor`` before the next replica's request, which is on its way already.
        """
        loop = asyncio.get_running_loop()
        for _ in range(RESLOTS):
            if loop.time() <= slot.deadline or self.shared is None:
                return
            self.reslotted += 1
            slot.not_before, slot.deadline = await self._reserve(loop.time())
            await _sleep_until(slot.not_before)
            slot.left = loop.time()

    async def _waited(self, last: Slot, event: asyncio.Event) -> float:
        """When the previous request was written or answered (per ``event``), or gave up on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(last.left + self.patience):
                await event.wait()
        if event is last.sent and last.written is not None:
            return last.written
        if last.answered is not None:  # answered, or failed before any write was reported
            return last.answered
        return asyncio.get_running_loop().time()

    def answered(self, slot: Slot, now: float, *, answer: bool) -> None:
        """Note that ``slot``'s request is over at ``now`` (with an answer, or failed)."""
        slot.answered = now
        if answer:  # a round trip says how far away the provider is
            start = slot.written if slot.written is not None else slot.left
            self._round_trips.append(now - start)
        slot.sent.set()
        slot.over.set()


async def paced_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    pacer: SlotPacer,
    provider: str,
    max_retries: int,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request in its account's turn; a 429 holds the account and is sent again.

    Args:
        client: the shared client.
        method: the HTTP method.
        url: the full URL.
        pacer: the account's pacer (from :class:`AccountLimiters`).
        provider: display name for error messages.
        max_retries: how many times a 429 is sent again before it is returned.
        **kwargs: for ``client.request`` (``json``, ``data``, ``headers``, ``auth`` ...).

    Returns:
        The answer: never a 429 unless ``max_retries`` retries were refused too; the adapter
        reads it (and maps a last 429 with :func:`providers.http.raise_for_common_status`).

    Raises:
        ProviderUnavailable: the transport failed (see :func:`providers.http.send_request`).

    """
    retries = 0
    while True:
        async with pacer.slot() as slot:
            response = await send_request(
                client, method, url, provider=provider, extensions=slot.extensions, **kwargs
            )
        if response.status_code != 429 or retries >= max_retries:
            return response
        retries += 1
        pacer.hold_off(retry_after_seconds(response))


class AccountLimiters:
    """Hands out one pacer per (provider, account), sharing its schedule when given one."""

    def __init__(self, shared: SharedPace | None = None) -> None:
        self._pacers: dict[str, SlotPacer] = {}
        self.shared = shared

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
            pacer = SlotPacer(interval, floor=floor, shared=self.shared, key=digest)
            self._pacers[digest] = pacer
        return pacer
