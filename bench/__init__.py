"""Benchmarks of chatops-bridge, run with ``python -m bench [name]`` (see ``bench/RESULTS.md``).

Every benchmark talks only to servers it starts itself on 127.0.0.1 (or to in-process fakes),
bounds its loops in count and time, and prints its figures next to a baseline measured in the
same run, because the shared 2-core machines drift by ±20% from run to run.
"""

from __future__ import annotations

# name → (module, one-line description); ``python -m bench`` runs them in this order.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "fanout": ("bench.fanout", "10,000-recipient send vs the aiohttp ceiling"),
    "ratelimit": ("bench.ratelimit", "1,000 sends paced at one per 50 ms, zero 429s"),
    "overhead": ("bench.overhead", "/send through the real Application: p50/p99, updates/s"),
    "tracking": ("bench.tracking", "10,000 open messages tracked: RSS, calls, DB writes"),
    "startup": ("bench.startup", "python -m bot to ready: empty DB and 100,000 messages"),
}
