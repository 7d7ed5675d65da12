"""Split tests/test_*.py into N halves of about equal cost for CI's parallel PostgreSQL runs.

Cost is a file's size, plus a fixed amount for a file that starts real bot processes (those
take tens of seconds whatever their size). Greedy: the costliest file goes to the lightest part.
Prints one line per part, files separated by spaces.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROCESS_COST = 60_000  # a real-process test costs about as much as 60 kB of unit tests
MARKS = ("BotProcess", "process_env(", "ReplicaProcess")


def cost(path: Path) -> int:
    """A test file's estimated cost (see the module docstring)."""
    text = path.read_text(encoding="utf-8")
    return len(text) + (PROCESS_COST if any(mark in text for mark in MARKS) else 0)


def main() -> None:
    """Print the parts, one a line."""
    parts = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    files = sorted(Path("tests").glob("test_*.py"), key=cost, reverse=True)
    loads = [0] * parts
    chosen: list[list[str]] = [[] for _ in range(parts)]
    for path in files:
        lightest = loads.index(min(loads))
        loads[lightest] += cost(path)
        chosen[lightest].append(str(path))
    for part in chosen:
        print(" ".join(sorted(part)))


if __name__ == "__main__":
    main()
