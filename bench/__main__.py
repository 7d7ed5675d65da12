"""``python -m bench`` runs every benchmark; ``python -m bench NAME [options]`` runs one.

Run together, each benchmark gets a fresh interpreter per database (so one's peak memory or
warmed caches cannot flatter the next) and is stopped if it runs longer than
``PER_BENCHMARK_SECONDS``. The exit code is 0 when every budget of the storage issue was met
(``Report.budget``: /send overhead, 100 chats at 100/s, tracking, start-up; on both
databases), 1 when one was missed, 2 or more on an error (a benchmark that breaks or finds
wrong results). Fan-out and rate-limit figures (``Report.check``) never fail a run.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import traceback

from bench import BENCHMARKS
from bench.common import machine_lines

PER_BENCHMARK_SECONDS = 1_800  # both databases; start-up seeds 1,000,000 rows twice


def run_all() -> int:
    """Run each benchmark in its own process, one after another; the worst exit code wins."""
    print("# chatops-bridge benchmarks")
    for line in machine_lines():
        print(f"  {line}")
    worst = 0
    for name, (_module, description) in BENCHMARKS.items():
        print(f"\n$ python -m bench {name}    # {description}", flush=True)
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bench", name], timeout=PER_BENCHMARK_SECONDS, check=False
            )
            code = done.returncode
        except subprocess.TimeoutExpired:
            print(f"{name}: stopped after {PER_BENCHMARK_SECONDS} s")
            code = 124
        worst = max(worst, code)
    return worst


def parser() -> argparse.ArgumentParser:
    """``python -m bench [NAME [options]]``; a benchmark's own options follow its name."""
    listed = "\n".join(f"  {name:<10} {about}" for name, (_m, about) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        usage="%(prog)s [-h] [NAME [options]]",
        description="Run every benchmark (the default, or 'all'), each on SQLite and PostgreSQL "
        "in fresh processes, or one by name.",
        epilog=f"benchmarks:\n{listed}\n\n'python -m bench NAME --help' lists NAME's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name",
        nargs="?",
        default="all",
        choices=[*BENCHMARKS, "all"],
        metavar="NAME",
        help="a benchmark below, or all",
    )
    # Everything after the name is the benchmark's own (its --help included).
    parser.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """Dispatch to one benchmark's ``main`` or run them all."""
    args = parser().parse_args(argv)
    if args.name == "all":
        return run_all()
    module = importlib.import_module(BENCHMARKS[args.name][0])
    try:
        result: int = module.main(args.options)
    except Exception:  # a benchmark that breaks is not a missed target: say so, exit 2
        traceback.print_exc()
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
