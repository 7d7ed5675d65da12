"""Find user-visible English that does not go through the translation API (``i18n``).

A string literal or f-string "looks like prose" when it holds two words in a row. It is
fine when it is a docstring, an argument of ``_``/``ngettext``/``N_`` (wrapped), an
argument of a logging call (logs are for operators, in English), the message of a built-in
exception (a programming or start-up error, not a chat reply), or on a line marked
``# i18n: not shown`` (a protocol value, a fixed pattern a provider answers with…).

``python -m tests.i18n_scan [paths…]`` lists what is left (default: bot/ and providers/);
``python -m tests.i18n_scan --untranslated [paths…]`` lists the wrapped strings of those
modules that the Indonesian catalog lacks (run ``make i18n`` first).
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("bot", "providers")
# Modules nobody reads in a chat: the command line, logs, metrics, health and reference docs
# are for whoever runs the bot, and stay English.
NOT_SHOWN = {
    "bot/__main__.py",
    "bot/config.py",
    "bot/health.py",
    "bot/logs.py",
    "bot/metrics.py",
    "bot/ops.py",
    "bot/probe.py",
    "bot/reference.py",
    "bot/webhooks.py",
}
PROSE = re.compile(r"[A-Za-z]{2,}[,:;]? +[A-Za-z]{2,}")
MARK = "# i18n: not shown"
WRAPPERS = {"_", "ngettext", "N_"}
LOGGERS = {"log", "logger", "logging", "_log", "warnings"}
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


@dataclass(frozen=True)
class Unwrapped:
    """One piece of prose outside the translation API."""

    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {self.text[:80]!r}"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _callee(call: ast.Call) -> tuple[str, str]:
    """(the object a method is called on, the function's name)."""
    func = call.func
    if isinstance(func, ast.Name):
        return "", func.id
    if isinstance(func, ast.Attribute):
        owner = func.value
        return (owner.id if isinstance(owner, ast.Name) else "", func.attr)
    return "", ""


def _exempt_subtrees(tree: ast.AST) -> set[int]:
    """Nodes whose strings are fine: wrapped, logged, or a built-in exception's message."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            owner, name = _callee(node)
            if name in WRAPPERS or owner in LOGGERS or name in BUILTIN_ERRORS:
                exempt.update(id(child) for child in ast.walk(node))
    return exempt


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else " x " for part in node.values
        )
    return None


def scan_file(path: Path) -> list[Unwrapped]:
    """The prose in one module that is neither wrapped nor exempt."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    skip = _docstrings(tree) | _exempt_subtrees(tree)
    found = []
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(part) for part in node.values)
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inside_fstring:
            continue
        text = _text(node)
        if text is None or not PROSE.search(text):
            continue
        start = node.lineno
        end = getattr(node, "end_lineno", start) or start
        if any(MARK in lines[n - 1] for n in range(start, end + 1)):
            continue
        found.append(Unwrapped(path, start, text))
    return sorted(found, key=lambda f: f.line)


def scan(paths: list[Path] | None = None) -> list[Unwrapped]:
    """Every unwrapped piece of prose under ``paths`` (default: bot/ and providers/)."""
    roots = paths or [REPO / name for name in SCANNED]
    files = sorted(
        file
        for root in roots
        for file in ([root] if root.is_file() else root.rglob("*.py"))
        if str(file.relative_to(REPO)) not in NOT_SHOWN
    )
    return [finding for file in files for finding in scan_file(file)]


def untranslated(paths: list[Path] | None = None, code: str = "id") -> list[str]:
    """Wrapped strings of the modules under ``paths`` with no (or a fuzzy) translation."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
    from babel.messages.pofile import read_po

    from i18n import catalog_path

    with catalog_path(code).open("rb") as source:
        catalog = read_po(source, locale=code)
    roots = paths or [REPO / name for name in SCANNED]
    files = sorted(f for r in roots for f in ([r] if r.is_file() else r.rglob("*.py")))
    missing = []
    for file in files:
        for _line, message, _comments, _context in extract_from_file(
            "python", str(file), keywords=DEFAULT_KEYWORDS
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            entry = catalog.get(msgid)
            strings = entry.string if entry is not None else ""
            forms = strings if isinstance(strings, tuple) else (strings,)
            if entry is None or entry.fuzzy or not all(forms):
                missing.append(f"{file.relative_to(REPO)}: {msgid!r}")
    return missing


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--untranslated":
        lacking = untranslated([Path(arg).resolve() for arg in args[1:]] or None)
        print("\n".join(lacking))
        print(f"{len(lacking)} untranslated", file=sys.stderr)
        sys.exit(1 if lacking else 0)
    results = scan([Path(arg).resolve() for arg in args] or None)
    for result in results:
        print(result)
    print(f"{len(results)} unwrapped", file=sys.stderr)
    sys.exit(1 if results else 0)
