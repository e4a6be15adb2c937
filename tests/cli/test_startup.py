"""`golive --help` must stay light: none of the heavy libraries are imported to print it."""

from __future__ import annotations

from bench.startup import HEAVY, heavy_imports


def test_help_imports_no_heavy_module() -> None:
    assert heavy_imports() == []
    assert "pydantic" in HEAVY and "psycopg" in HEAVY and "docker" in HEAVY


def test_the_import_check_can_see_an_import() -> None:
    assert heavy_imports(extra="import httpx") == ["httpx"]
