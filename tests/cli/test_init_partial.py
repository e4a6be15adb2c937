"""`golive init` where one of its two files exists: the missing one is written, the other kept; `--ttl -5`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_init_writes_the_missing_mapping_and_keeps_an_edited_config(tmp_path: Path, cli,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "golive.toml"
    config.write_text("# edited by hand\n")
    config.chmod(0o600)
    result = cli("init", "--json")
    assert result.exit_code == 0
    assert config.read_text() == "# edited by hand\n"  # (not overwritten: only --force does that)
    assert (tmp_path / "mapping.toml").read_text().startswith("#")
    assert json.loads(result.stdout) == {"ok": True, "written": ["mapping.toml"], "kept": ["golive.toml"],
                                         "switch": "reload"}


def test_a_negative_ttl_is_named_as_such() -> None:
    from golive.dns.ttl import ttl_problem

    assert ttl_problem(-5) == "a TTL is a number of seconds, not a negative one"  # (was "Linode would round -5s up")
