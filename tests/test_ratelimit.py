"""The slot pacer on a virtual clock: FIFO, the floor at the provider, answer and write anchors.

Each test runs on an event loop whose clock jumps to the next timer instead of waiting (and
moves 1 µs per loop pass, so a busy-wait ends), so times are exact and nothing here depends on
how loaded the machine is. A "request" is a task inside ``async with pacer.slot()``; the provider
stamps it ``forward`` seconds after it was written and answers ``back`` seconds later. With
``hooks`` it reports its write and answer through the slot's trace callback, with the event names
httpcore uses; :func:`providers.ratelimit.paced_request` is tested at the end, over a
``MockTransport`` whose fake stamps requests on the same virtual clock.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import selectors
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from providers.errors import ProviderUnavailable
from providers.ratelimit import (
    PATIENCE_FLOORS,
    WRITE_LEAD,
    AccountLimiters,
    Slot,
    SlotPacer,
    paced_request,
)

T = TypeVar("T")
FLOOR = 0.05
INTERVAL = 0.0525  # 5 % headroom: a provider answering within 2.5 ms is "near"
STEP = 1e-6  # what one pass of the virtual loop costs


class _JumpingSelector(selectors.DefaultSelector):
    """Never waits: when nothing is ready the loop's clock jumps by the timeout instead."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("deadlock: nothing ready and no timer set")
            self._loop.now += max(timeout, STEP)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock (see the module docstring)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        """The virtual clock."""
        return self.now


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


@dataclass
class Seen:
    """One request as the test saw it."""

    name: int
    left: float = 0.0
    written: float = 0.0
    stamped: float = 0.0
    answered: float = 0.0


async def request(
    pacer: SlotPacer,
    seen: list[Seen],
    name: int,
    *,
    build: float = 0.0,
    forward: float = 0.0,
    back: float = 0.0,
    hooks: bool = False,
) -> None:
    """One request: build it, write it, the provider stamps it, its answer comes back.

    With ``hooks`` it reports its write and answer as httpcore's trace events would.
    """
    async with pacer.slot() as slot:
        one = Seen(name, left=now())
        seen.append(one)
        await asyncio.sleep(build)
        if hooks:
            await written(slot)
        one.written = now()
        await asyncio.sleep(forward)
        one.stamped = now()
        await asyncio.sleep(back)
        one.answered = now()
        if hooks:
            await answered(slot)


async def written(slot: Slot) -> None:
    """The events around writing the request's headers (the first one may hold them)."""
    await slot.trace("http11.send_request_headers.started", {})
    await slot.trace("http11.send_request_headers.complete", {})
    await slot.trace("http11.send_request_body.started", {})
    await slot.trace("http11.send_request_body.complete", {})


async def answered(slot: Slot) -> None:
    """The events of the answer's headers arriving."""
    await slot.trace("http11.receive_response_headers.started", {})
    await slot.trace("http11.receive_response_headers.complete", {})


def gaps(values: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(values)]


def test_requests_are_let_go_in_the_order_they_asked() -> None:
    async def main() -> list[int]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        tasks = []
        for name in range(8):
            tasks.append(asyncio.create_task(request(pacer, seen, name, back=0.001)))
            await asyncio.sleep(0)  # each asks after the previous one
        await asyncio.gather(*tasks)
        return [s.name for s in seen]

    assert run(main) == list(range(8))


def test_near_provider_is_paced_from_its_answers_whatever_the_jitter() -> None:
    """Some requests reach the provider 10 ms late: it still never sees a gap under the floor.

    (A pacer that only spaced departures 2.5 ms wider than the floor would give the request
    after each late one a gap of 42.5 ms.)
    """
    jitter = random.Random(6)

    async def main() -> list[Seen]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        await asyncio.gather(
            *(
                request(
                    pacer,
                    seen,
                    n,
                    build=jitter.uniform(0, 0.0008),
                    forward=0.01 if n % 7 == 3 else jitter.uniform(0, 0.0008),
                    back=jitter.uniform(0, 0.0004),
                )
                for n in range(50)
            )
        )
        assert pacer.near
        return seen

    seen = run(main)
    assert min(gaps([s.stamped for s in seen])) >= FLOOR
    # Each request goes exactly one floor after the previous answer: no extra margin is paid.
    for previous, current in itertools.pairwise(seen):
        assert current.left == pytest.approx(previous.answered + FLOOR, abs=1e-5)


def test_far_provider_stays_pipelined_on_a_drift_free_schedule() -> None:
    """A 200 ms round trip: requests overlap, and the pace is the interval, not the RTT."""

    async def main() -> tuple[SlotPacer, list[Seen]]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        await asyncio.gather(
            *(request(pacer, seen, n, forward=0.1, back=0.1, hooks=True) for n in range(40))
        )
        return pacer, seen

    pacer, seen = run(main)
    assert not pacer.near
    # The first request waited for its answer (a new provider counts as near), then learned.
    writes = [s.written for s in seen[1:]]
    assert gaps(writes) == pytest.approx([INTERVAL] * (len(writes) - 1), abs=1e-5)
    assert seen[5].left < seen[4].answered  # several requests in flight at once


def test_far_provider_a_late_write_pushes_the_next_one_back() -> None:
    """A busy loop delays a write past the lead: the next one is still a floor after it."""
    builds = [0.0005, 0.0005, WRITE_LEAD + 0.003, 0.0005, 0.0005, 0.0001, 0.0005, 0.0005]

    async def main() -> list[Seen]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        # Two slow answers first, so that the pacer knows the provider is far.
        await request(pacer, seen, -2, forward=0.05, back=0.05, hooks=True)
        await request(pacer, seen, -1, forward=0.05, back=0.05, hooks=True)
        assert not pacer.near
        await asyncio.gather(
            *(
                request(pacer, seen, n, build=b, forward=0.05, back=0.05, hooks=True)
                for n, b in enumerate(builds)
            )
        )
        return seen[2:]

    written = [s.written for s in run(main)]
    assert gaps(written)[1] == pytest.approx(INTERVAL + 0.003, abs=1e-5)  # written late
    assert gaps(written)[2] == pytest.approx(FLOOR, abs=1e-5)  # the next: a floor after it
    assert min(gaps(written)) >= FLOOR - 1e-9
    assert written[-1] - written[1] == pytest.approx(6 * INTERVAL, abs=1e-5)  # no drift


def test_reported_writes_let_requests_go_early_and_hold_the_bytes() -> None:
    """With the write hook, the request is let go early and written exactly on time."""

    async def main() -> list[Seen]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        for n in range(6):
            await request(pacer, seen, n, build=0.0003, forward=0.0004, back=0.0004, hooks=True)
        return seen

    seen = run(main)
    for previous, current in itertools.pairwise(seen[1:]):
        assert current.left < previous.answered + FLOOR - WRITE_LEAD / 2
        assert current.written == pytest.approx(previous.answered + FLOOR, abs=1e-5)


def test_a_late_wake_up_does_not_drift_the_far_schedule() -> None:
    """A busy spell makes one request late; the ones after it keep the original slots."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        await request(pacer, seen, -1, forward=0.1, back=0.1)
        assert not pacer.near
        starts: list[float] = []

        async def one() -> None:
            async with pacer.slot():
                starts.append(now())
                if len(starts) == 3:
                    # While the next request sleeps until its slot, the loop is stuck (e.g. GC)
                    # until 3 ms past it.
                    await asyncio.sleep(0.01)
                    loop.now = starts[-1] + INTERVAL + 0.003
                await asyncio.sleep(0.1)  # a far provider's answer

        await asyncio.gather(*(one() for _ in range(10)))
        return starts

    starts = run(main)
    assert gaps(starts)[2] == pytest.approx(INTERVAL + 0.003, abs=1e-5)  # the late one
    assert gaps(starts)[3] == pytest.approx(FLOOR, abs=1e-5)  # never closer than the floor
    assert min(gaps(starts)) >= FLOOR - 1e-9
    assert starts[-1] - starts[0] == pytest.approx(9 * INTERVAL, abs=1e-5)


def test_an_answer_that_never_comes_is_waited_for_only_patience_long() -> None:
    async def main() -> list[Seen]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        await asyncio.gather(
            request(pacer, seen, 0, back=10.0), request(pacer, seen, 1, back=0.001)
        )
        return seen

    stuck, after = run(main)
    assert after.left == pytest.approx(stuck.left + PATIENCE_FLOORS * FLOOR + FLOOR, abs=1e-5)


def test_a_failed_request_anchors_the_next_on_its_failure() -> None:
    async def main() -> tuple[float, float]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)

        async def unreachable() -> None:
            async with pacer.slot():
                await asyncio.sleep(0.01)
                raise OSError("no route")

        with pytest.raises(OSError, match="no route"):
            await unreachable()
        failed = now()
        async with pacer.slot():
            return failed, now()

    failed, started = run(main)
    assert started == pytest.approx(failed + FLOOR, abs=1e-5)


def test_the_provider_turns_far_and_near_again() -> None:
    async def main() -> list[bool]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        seen: list[Seen] = []
        modes = [pacer.near]
        await request(pacer, seen, 0, back=0.001)
        modes.append(pacer.near)
        for n in range(64):  # every answer of the remembered window is slow
            await request(pacer, seen, n, back=0.02)
        modes.append(pacer.near)
        await request(pacer, seen, 99, back=0.001)  # one fast answer is enough
        modes.append(pacer.near)
        return modes

    assert run(main) == [True, True, False, True]


def test_an_interval_of_zero_paces_nothing() -> None:
    async def main() -> float:
        pacer, seen = SlotPacer(0), []
        start = now()
        for n in range(5):
            await request(pacer, seen, n, back=0.001)
        return now() - start

    assert run(main) == pytest.approx(0.005, abs=1e-4)


def test_without_headroom_the_provider_is_never_near() -> None:
    """Waiting for answers would cost more than a zero headroom: the schedule alone paces."""

    async def main() -> tuple[bool, list[float]]:
        pacer, seen = SlotPacer(FLOOR), []  # floor == interval
        await asyncio.gather(*(request(pacer, seen, n, back=0.001) for n in range(4)))
        return pacer.near, [s.left for s in seen]

    near, starts = run(main)
    assert not near
    assert gaps(starts) == pytest.approx([FLOOR] * 3, abs=1e-5)


def test_an_unpaced_slot_traces_nothing() -> None:
    async def main() -> tuple[float, dict[str, object]]:
        pacer = SlotPacer(0)
        start = now()
        async with pacer.slot() as slot:
            await written(slot)
            await answered(slot)
        return now() - start, dict(slot.extensions)

    waited, extensions = run(main)
    assert waited < 1e-3
    assert extensions == {}  # no trace callback: httpcore does no work for it


def test_limiters_share_one_pacer_per_account() -> None:
    limiters = AccountLimiters()
    one = limiters.get("nusasms", "key-a", interval=INTERVAL, floor=FLOOR)
    assert limiters.get("nusasms", "key-a", interval=INTERVAL, floor=FLOOR) is one
    assert limiters.get("nusasms", "key-b", interval=INTERVAL, floor=FLOOR) is not one
    assert limiters.get("nusasms-sms", "key-a", interval=INTERVAL, floor=FLOOR) is not one
    assert (one.interval, one.floor) == (INTERVAL, FLOOR)


class Throttled:
    """A provider on the virtual clock: 429 (``Retry-After``) to requests under the floor."""

    def __init__(self, *, floor: float = FLOOR, retry_after: str = "1") -> None:
        self.floor = floor
        self.retry_after = retry_after
        self.accepted: list[float] = []
        self.refused: list[float] = []
        self.traced: list[bool] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        stamp = now()
        self.traced.append("trace" in request.extensions)
        if self.accepted and stamp - self.accepted[-1] < self.floor:
            self.refused.append(stamp)
            return httpx.Response(429, headers={"Retry-After": self.retry_after})
        self.accepted.append(stamp)
        return httpx.Response(200, json={"n": len(self.accepted)})


async def paced(
    fake: Throttled | Callable[[httpx.Request], httpx.Response],
    pacer: SlotPacer,
    count: int,
    *,
    max_retries: int = 3,
) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        return await asyncio.gather(
            *(
                paced_request(
                    http,
                    "POST",
                    "http://provider.test/send",
                    pacer=pacer,
                    provider="Fake",
                    max_retries=max_retries,
                    json={"n": n},
                )
                for n in range(count)
            )
        )


def test_paced_requests_reach_the_provider_a_floor_apart() -> None:
    fake = Throttled()

    async def main() -> list[httpx.Response]:
        return await paced(fake, SlotPacer(INTERVAL, floor=FLOOR), 10)

    answers = run(main)
    assert [a.status_code for a in answers] == [200] * 10
    assert fake.refused == []
    assert min(gaps(fake.accepted)) >= FLOOR
    assert all(fake.traced)  # the trace extension went with every request


def test_an_unpaced_request_carries_no_trace_callback() -> None:
    fake = Throttled(floor=0.0)
    assert [a.status_code for a in run(lambda: paced(fake, SlotPacer(0), 3))] == [200] * 3
    assert fake.traced == [False] * 3


def test_a_429_holds_the_whole_account_for_its_retry_after() -> None:
    """Unpaced requests all collide; the refused ones wait Retry-After, then go again."""
    fake = Throttled(retry_after="2")

    async def main() -> list[httpx.Response]:
        return await paced(fake, SlotPacer(0), 2)

    answers = run(main)
    assert [a.status_code for a in answers] == [200, 200]
    assert len(fake.refused) == 1
    assert fake.accepted[1] - fake.refused[0] == pytest.approx(2.0, abs=1e-3)


def test_a_429_after_the_last_retry_is_returned() -> None:
    fake = Throttled(retry_after="0.5")

    async def main() -> tuple[list[httpx.Response], float]:
        pacer = SlotPacer(0)
        answers = await paced(fake, pacer, 1)  # the account's first request: accepted
        start = now()
        answers += await paced(fake, pacer, 1, max_retries=2)  # too soon after it
        return answers, now() - start

    answers, waited = run(main)
    # The 2nd request is refused once (0 s after the 1st), then waits 0.5 s: accepted.
    assert [a.status_code for a in answers] == [200, 200]
    assert waited == pytest.approx(0.5, abs=1e-3)

    always = Throttled(floor=10.0, retry_after="0")

    async def refused() -> list[httpx.Response]:
        return await paced(always, SlotPacer(0), 2, max_retries=2)

    statuses = sorted(a.status_code for a in run(refused))
    assert statuses == [200, 429]
    assert len(always.refused) == 3  # the first try and two retries


def test_a_transport_failure_is_provider_unavailable_and_frees_the_turn() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def main() -> tuple[ProviderUnavailable, float, float]:
        pacer = SlotPacer(INTERVAL, floor=FLOOR)
        with pytest.raises(ProviderUnavailable) as caught:
            await paced(unreachable, pacer, 1)
        failed = now()
        async with pacer.slot():
            return caught.value, failed, now()

    error, failed, started = run(main)
    assert error.maybe_sent is False
    assert started == pytest.approx(failed + FLOOR, abs=1e-5)
