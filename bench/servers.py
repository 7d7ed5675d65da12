"""The benchmarks' fake NusaSMS WhatsApp API, run as ``python -m bench.servers`` on 127.0.0.1.

It answers what the send and status paths need, shaped like the real API:

* ``POST …/whatsapp/message`` → 201 ``{"error": false, "data": {"ref_no": …}}``;
* ``GET …/whatsapp/status/{ref_no}`` → the message's status letter; every poll moves it one
  step along ``Q → S → D → R`` (so a tracker sees a change on each call);
* ``GET …/auth/api_key`` → the account;
* with ``--interval`` > 0, NusaSMS's pacing per ``APIKey``: a request less than ``interval``
  after the last accepted one gets 429 ``Retry-After: 1`` and is not processed;
* ``GET /_stats`` and ``GET /_reset``: the counters the benchmarks check.

It binds a free port, prints ``PORT <n>`` and exits by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import time

from aiohttp import web

STEPS = ("Q", "S", "D", "R")


class Fake:
    """Counters and message states behind the routes."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.refs = itertools.count(1)
        self.states: dict[str, int] = {}
        self.last_accepted: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Zero the counters (message states are kept)."""
        self.requests = 0
        self.accepted = 0
        self.rejected = 0
        self.rejections: list[float] = []
        self.status_calls = 0
        self.min_gap = float("inf")
        self.first: float | None = None
        self.last: float | None = None

    def paced(self, request: web.Request) -> web.Response | None:
        """A 429 when this account's previous accepted request is too recent."""
        self.requests += 1
        now = time.monotonic()
        if self.interval <= 0:
            return None
        key = request.headers.get("APIKey", "")
        last = self.last_accepted.get(key)
        if last is not None:
            gap = now - last
            if gap < self.interval:
                self.rejected += 1
                self.rejections.append(round(gap * 1000, 2))
                return web.json_response(
                    {"error": True, "message": "Too Many Requests", "data": None},
                    status=429,
                    headers={"Retry-After": "1"},
                )
            self.min_gap = min(self.min_gap, gap)
        self.last_accepted[key] = now
        return None

    async def message(self, request: web.Request) -> web.Response:
        """Accept a WhatsApp text and hand out a ref_no."""
        refused = self.paced(request)
        if refused is not None:
            return refused
        body = await request.json()
        if not body.get("destination") or "message" not in body:
            return web.json_response({"detail": [{"msg": "field required"}]}, status=422)
        ref = f"BENCH{next(self.refs):010d}"
        self.states[ref] = 0
        self.accepted += 1
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        self.last = now
        return web.json_response(
            {"error": False, "message": "Success", "data": {"ref_no": ref}}, status=201
        )

    async def status(self, request: web.Request) -> web.Response:
        """Report a message's status, then move it one step on."""
        refused = self.paced(request)
        if refused is not None:
            return refused
        self.status_calls += 1
        ref = request.match_info["ref"]
        step = self.states.get(ref)
        if step is None:
            return web.json_response(
                {"error": True, "error_code": 404, "message": "Message not found", "data": None},
                status=404,
            )
        self.states[ref] = min(step + 1, len(STEPS) - 1)
        return web.json_response(
            {"error": False, "message": "Success", "data": {"ref_no": ref, "status": STEPS[step]}}
        )

    async def whoami(self, request: web.Request) -> web.Response:
        """The account behind the key."""
        self.requests += 1
        return web.json_response(
            {"error": False, "data": {"userid": "bench", "idClient": 1, "username": "bench"}}
        )

    async def stats(self, _request: web.Request) -> web.Response:
        """The counters, as JSON."""
        span = (self.last - self.first) if self.first is not None and self.last else 0.0
        return web.json_response(
            {
                "requests": self.requests,
                "accepted": self.accepted,
                "rejected_429": self.rejected,
                "rejected_gaps_ms": self.rejections[:50],
                "status_calls": self.status_calls,
                "min_gap": None if self.min_gap == float("inf") else self.min_gap,
                "accepted_span": span,
            }
        )

    async def reset_view(self, _request: web.Request) -> web.Response:
        """Zero the counters."""
        self.reset()
        return web.json_response({"ok": True})


async def serve(interval: float, max_seconds: float) -> None:
    """Serve until ``max_seconds`` have passed (or the parent terminates us)."""
    fake = Fake(interval)
    app = web.Application()
    base = "/nusasms_api/1.0"
    app.router.add_post(f"{base}/whatsapp/message", fake.message)
    app.router.add_get(f"{base}/whatsapp/status/{{ref}}", fake.status)
    app.router.add_get(f"{base}/auth/api_key", fake.whoami)
    app.router.add_get("/_stats", fake.stats)
    app.router.add_get("/_reset", fake.reset_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only through the asyncio server
    assert isinstance(server, asyncio.Server)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    try:
        await asyncio.sleep(max_seconds)
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--nice", type=int, default=0, help="priority change (root may go < 0)")
    args = parser.parse_args()
    if args.nice:
        # The fake stands in for a remote server with its own CPU: when neighbours load this
        # machine, a higher priority keeps its arrival times (and so its 429s) honest.
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    asyncio.run(serve(args.interval, args.max_seconds))


if __name__ == "__main__":
    main()
