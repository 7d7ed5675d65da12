"""The project's own command reference (docs/COMMANDS.md) agrees with the command registry.

Its command table must be exactly what ``python -m bot.reference`` generates from the registry
(so a command added, removed or changed there fails here until the page is regenerated), and
no ``/command`` named anywhere on the page may be one the bot does not have.
"""

from __future__ import annotations

import re

import pytest

from bot.commands import Command
from bot.config import Settings
from bot.handlers import COMMANDS
from bot.reference import BEGIN, DOC, END, updated
from tests.e2e_support import REPO

# A slash command in prose or code: "/name" not inside a path or URL ("/api/v2", "a/b").
NAMED = re.compile(r"(?<![\w/.:<])/([a-z][a-z_]*)\b(?!/)")


def test_the_command_table_is_generated_from_the_registry() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert doc == updated(doc, COMMANDS), (
        "docs/COMMANDS.md is out of date with the command registry: "
        "run `python -m bot.reference` and commit the result"
    )


def test_every_command_of_the_registry_is_in_the_reference() -> None:
    doc = DOC.read_text(encoding="utf-8")
    table = doc[doc.index(BEGIN) : doc.index(END)]
    for command in COMMANDS:
        assert f"| `/{command.name}" in table, command.name


def test_the_reference_names_no_command_the_bot_lacks() -> None:
    known = {c.name for c in COMMANDS}
    named = set(NAMED.findall(DOC.read_text(encoding="utf-8")))
    assert named, "the pattern found no command at all"
    assert named <= known, f"docs/COMMANDS.md names commands the bot lacks: {named - known}"


async def _noop(*_args: object) -> None:
    return None


def test_a_registry_change_makes_the_check_fail() -> None:
    doc = DOC.read_text(encoding="utf-8")
    renamed = [*COMMANDS[:-1], Command("stats", "", "charts", COMMANDS[0].role, _noop)]
    assert updated(doc, renamed) != doc
    with pytest.raises(ValueError, match="lacks the markers"):
        updated(doc.replace(BEGIN, ""), COMMANDS)


def test_the_readme_points_at_the_reference_inside_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/COMMANDS.md" in readme
    assert "shared/COMMANDS.md" not in readme


def test_ci_virtual_environment_is_ignored() -> None:
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".venv-ci/" in ignored


def test_every_setting_is_in_env_example_and_the_readme() -> None:
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for field in Settings.model_fields:
        name = field.upper()
        assert f"\n{name}=" in example, f"{name} is missing from .env.example"
        assert f"`{name}`" in readme, f"{name} is missing from the README's configuration table"
