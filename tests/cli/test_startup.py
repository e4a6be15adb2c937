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
