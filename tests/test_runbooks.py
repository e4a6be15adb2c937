"""Every `golive …` line in runbooks/ is a real command: its command path exists and every option it
uses is one that command takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"


def commands() -> list[tuple[str, str]]:
    found = []
    for page in sorted(RUNBOOKS.glob("*.md")):
        for line in page.read_text().splitlines():
            for match in re.finditer(r"(?:^\s*|`)(golive [^`#]+?)(?:`|\s*#|\s*$)", line):
                found.append((page.name, match.group(1).strip()))
    return found


def test_the_runbooks_have_commands() -> None:
    assert len(commands()) > 20


@pytest.mark.parametrize(("page", "command"), commands())
def test_runbook_command_exists(page: str, command: str, cli) -> None:
    words = shlex.split(command)[1:]
    path = [w for w in words[: next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
            if w.isidentifier() or "-" in w]
    options = [w.split("=")[0] for w in words if w.startswith("--")]
    result = cli(*[w for w in path if not w.isupper()], "--help")
    assert result.exit_code == 0, f"{page}: `{command}`: {result.stderr}"
    for option in options:
        assert option in result.stdout, f"{page}: `{command}` uses {option}, which that command does not take"
