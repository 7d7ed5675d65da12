"""Prometheus metrics: every metric the bot exports, in one registry per Application.

One :class:`Metrics` is made with the Application (``bot_data.metrics``) and holds its own
``CollectorRegistry``, never prometheus-client's global one, so two applications in one
process (the tests) count apart. Counters move where things happen; gauges that describe the
database or the poll schedule are set at scrape time (:func:`bot.ops.scrape`), so an idle bot
costs nothing between scrapes.

Labels are bounded: a route is ``<provider>:<channel>`` from the registry, an outcome a
delivery state, a provider the registry's name (``other`` for a host no provider declares), a
status a class such as ``2xx``. Never a chat id, a number or a message id.

Provider calls are timed by two httpx event hooks on the shared client (:meth:`instrument`):
the request hook notes when httpx starts the request, the response hook (headers in) observes
the latency and counts the answer, a 429 also as a rate-limit hit. Telegram's own client is
PTB's and not instrumented here.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ProviderOf = Callable[[httpx.URL], str]
"""The registry name of the provider a URL belongs to (``other`` when none)."""

ReplicaCount = Callable[[], int | float | Awaitable[int | float]]
"""How many bot processes are alive; called at scrape time (sync or async)."""

# Provider answers take from a few ms (a fake) to the 20 s HTTP timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


class SentMessage(Protocol):
    """What :meth:`Metrics.count_sent` reads of a message row."""

    provider: str
    channel: str
    state: str


async def _one_replica() -> int:
    """One: this process, the default until replicas report themselves."""
    return 1


def status_class(code: int) -> str:
    """``429`` as itself (it matters on its own), every other code as ``2xx``/``4xx``/…."""
    return "429" if code == 429 else f"{code // 100}xx"


class Metrics:
    """The bot's metrics and the registry they live in.

    Args:
        replicas_alive: how many bot processes are alive (default: 1, this one); the value
            is read at every scrape, so a database count can be plugged in.

    """

    def __init__(self, *, replicas_alive: ReplicaCount = _one_replica) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.replicas = replicas_alive
        r = self.registry
        self.messages_sent = Counter(
            "chatops_messages_sent",
            "Messages after their send, by route (provider:channel) and outcome (delivery state)",
            ["route", "outcome"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "chatops_provider_request_seconds",
            "Provider HTTP calls: seconds until the answer's headers, by provider",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_answers = Counter(
            "chatops_provider_responses",
            "Provider HTTP answers by provider and status class (2xx, 4xx, 429, 5xx)",
            ["provider", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "chatops_provider_rate_limited",
            "HTTP 429 answers from providers (each is waited out and sent again)",
            ["provider"],
            registry=r,
        )
        self.card_edits = Counter(
            "chatops_card_edits",
            "Status-card edits by result (edited, not_modified, gone, retry_after, error)",
            ["result"],
            registry=r,
        )
        self.schedule_backlog = Gauge(
            "chatops_schedule_backlog",
            "Scheduled runs that are due but not fired yet (read at scrape time)",
            registry=r,
        )
        self.schedule_lag = Gauge(
            "chatops_schedule_backlog_oldest_seconds",
            "How late the most overdue unfired scheduled run is (0 when none is due)",
            registry=r,
        )
        self.poll_lag = Gauge(
            "chatops_poll_lag_seconds",
            "How late the most overdue delivery-status poll of this process is (0: none late)",
            registry=r,
        )
        self.polls_tracked = Gauge(
            "chatops_polls_tracked",
            "Messages this process polls for their delivery state",
            registry=r,
        )
        self.replicas_alive = Gauge(
            "chatops_replicas_alive", "Bot processes alive on this database", registry=r
        )
        self.scrape_errors = Counter(
            "chatops_scrape_errors",
            "Scrape-time readings that failed (the gauge keeps its last value), by source",
            ["source"],
            registry=r,
        )
        self._started: weakref.WeakKeyDictionary[httpx.Request, float] = (
            weakref.WeakKeyDictionary()
        )

    # -- counting ------------------------------------------------------------------------------

    def count_sent(self, messages: Iterable[SentMessage]) -> None:
        """Count a send's messages by the route each finally took and its state after it."""
        for message in messages:
            route = f"{message.provider}:{message.channel}"
            self.messages_sent.labels(route=route, outcome=message.state).inc()

    def count_card_edit(self, result: str) -> None:
        """Count one status-card edit attempt by its result."""
        self.card_edits.labels(result=result).inc()

    def instrument(self, client: httpx.AsyncClient, provider_of: ProviderOf) -> None:
        """Time and count every request of ``client`` (its public ``event_hooks``)."""

        async def started(request: httpx.Request) -> None:
            self._started[request] = time.perf_counter()

        async def answered(response: httpx.Response) -> None:
            request = response.request
            begun = self._started.pop(request, None)
            provider = provider_of(request.url)
            if begun is not None:
                self.provider_seconds.labels(provider).observe(time.perf_counter() - begun)
            code = response.status_code
            self.provider_answers.labels(provider, status_class(code)).inc()
            if code == 429:
                self.rate_limited.labels(provider).inc()

        hooks = client.event_hooks
        client.event_hooks = {
            "request": [started, *hooks.get("request", [])],
            "response": [answered, *hooks.get("response", [])],
        }

    # -- scrape time ---------------------------------------------------------------------------

    async def read_replicas(self) -> None:
        """Set ``chatops_replicas_alive`` from the callable (sync or async)."""
        value = self.replicas()
        if inspect.isawaitable(value):
            value = await value
        self.replicas_alive.set(float(value))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
