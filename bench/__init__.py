"""Benchmarks of chatops-bridge, run with ``python -m bench [name]`` (see ``bench/RESULTS.md``).

Every benchmark talks only to servers it starts itself on 127.0.0.1 (or to in-process fakes),
bounds its loops in count and time, and prints its figures next to a baseline measured in the
same run, because the shared 2-core machines drift by ±20% from run to run. The budgets of the
storage issue (overhead, tracking, startup) decide the exit code; fan-out and rate-limit
figures are printed against issue 6's targets but never fail a run.
"""

from __future__ import annotations

# name → (module, one-line description); ``python -m bench`` runs them in this order. Each runs
# on SQLite and on PostgreSQL (``--database`` picks one), each database in a fresh process.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "fanout": ("bench.fanout", "10,000-recipient send vs the aiohttp ceiling (a figure only)"),
    "ratelimit": ("bench.ratelimit", "1,000 sends paced at one per 50 ms (figures only)"),
    "overhead": ("bench.overhead", "/send: sequential p99 and rate; 100 chats at 100/s"),
    "tracking": ("bench.tracking", "10,000 live messages tracked: RSS, DB writes per change"),
    "startup": ("bench.startup", "python -m bot to ready: empty DB vs 1,000,000 messages"),
    "large": ("bench.large", "large sends: 10,000 from a list, 1,000 at 50 ms, card edits"),
    "metrics": ("bench.metrics", "/send with and without Prometheus metrics; one scrape"),
    "replicas": ("bench.replicas", "1-3 replicas sharing a rate-limited account (figures)"),
}
