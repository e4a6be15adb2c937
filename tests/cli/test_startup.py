"""`golive --help` must stay light: none of the heavy libraries are imported to print it."""

from __future__ import annotations

from bench.startup import HEAVY, heavy_imports


def test_help_imports_no_heavy_module() -> None:
    assert heavy_imports() == []
    assert "pydantic" in HEAVY and "psycopg" in HEAVY and "docker" in HEAVY


def test_the_import_check_can_see_an_import() -> None:
    assert heavy_imports(extra="import httpx") == ["httpx"]


def test_help_lists_groups_without_importing_them() -> None:
    from golive.cli.groups import GROUPS

    loaded = heavy_imports(extra="", modules=tuple(module for module, _ in GROUPS.values()))
    assert loaded == []


def test_every_group_loads_and_has_help(cli) -> None:
    from golive.cli.groups import GROUPS

    for name, (_, text) in GROUPS.items():
        result = cli(name, "--help")
        assert result.exit_code == 0, name
        assert " ".join(text.split()[:4]) in " ".join(result.stdout.split()), name


def test_no_config_key_in_any_help_text_is_eaten_as_rich_markup(cli) -> None:
    """`[dns].cutover_ttl` in a docstring or an option's help must show as written: rich takes an
    unescaped `[dns]` for a style tag and drops it."""
    import re

    import typer.main

    from golive.cli.groups import GROUPS
    from golive.cli.main import app

    def commands(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from commands(sub, [*path, name])

    root = typer.main.get_command(app)
    names = [*GROUPS, *(n for n in root.commands if n not in GROUPS)]  # (the groups load on first use)
    checked = 0
    for name in names:
        for path, command in commands(root.get_command(None, name), [name]):
            texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
            wanted = {m for text in texts for m in re.findall(r"\[[a-z_]+(?:\.[a-z_]+)*\]", text)}
            if not wanted:
                continue
            shown = cli(*path, "--help", env={"COLUMNS": "200"}).stdout
            for key in wanted:
                assert key in shown, f"golive {' '.join(path)} --help lost {key}"
                checked += 1
    assert checked >= 5  # (the help texts do name config keys: the check looked at some)


def test_every_command_a_message_or_help_names_exists_with_its_options() -> None:
    """A hint that sends the operator to `golive verify` (not built) or to an option a command does not have
    is a dead end at 2 a.m.: every `golive …` quoted in the source must parse."""
    import re
    from pathlib import Path

    import typer.main

    import golive
    from golive.cli.main import app

    root = typer.main.get_command(app)
    quoted = set()
    for path in Path(golive.__file__).parent.rglob("*.py"):
        quoted |= set(re.findall(r"`golive ([a-z][a-z0-9 -]*?)`", path.read_text()))
    assert len(quoted) >= 20
    for text in sorted(quoted):
        words = text.split()
        command, ctx = root, None
        while words and not words[0].startswith("-") and hasattr(command, "commands"):
            command = command.get_command(ctx, words.pop(0))  # type: ignore[assignment]
            assert command is not None, f"`golive {text}`: no such command"
        known = {opt for param in command.params for opt in param.opts}
        for word in words:
            if word.startswith("-"):
                assert word in known, f"`golive {text}`: {command.name} has no {word}"


def test_every_config_key_a_message_names_exists() -> None:
    """`[proxy].confirm_timeout` in a hint must be a key golive.toml really has."""
    import re
    from pathlib import Path

    from pydantic import BaseModel

    import golive
    from golive.config.models import GoliveConfig

    def model_of(annotation: object) -> type[BaseModel] | None:
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                return candidate
        return None

    sections = {"containers", "dns", "linode", "proxy", "source", "sync", "target", "project", "verify", "runbook",
                "hooks"}
    named = set()
    for path in Path(golive.__file__).parent.rglob("*.py"):
        named |= {(s, k) for s, k in re.findall(r"\[([a-z_]+(?:\.[a-z_]+)*)\]\.([a-z_]+)", path.read_text())
                  if s.split(".")[0] in sections}
    assert len(named) >= 20
    for section, key in sorted(named):
        model: type[BaseModel] | None = GoliveConfig
        for part in section.split("."):
            assert model is not None and part in model.model_fields, f"[{section}].{key}: no [{section}]"
            model = model_of(model.model_fields[part].annotation)
        assert model is not None and key in model.model_fields, f"[{section}].{key}: golive.toml has no such key"
