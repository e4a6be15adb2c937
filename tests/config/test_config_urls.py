"""Database URLs from the environment: an unencoded password is one line (exit 2) and never shown; a relative
SQLite source is the file beside the config, wherever golive is started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golive.secrets import REDACTOR, SecretRef

ENCODE = "percent-encode them (@ → %40, / → %2F, : → %3A, % → %25, space → %20)"
UNENCODED = ["postgresql://django:p@ss/w:rd%SECRET@127.0.0.1:1/db", "postgresql://django:pa ssSECRET@127.0.0.1:1/db"]


@pytest.mark.parametrize("url", [*UNENCODED, "postgresql://django:p@ss/w:rd%SECRET@127.0.0.1:1/db failed: x"])
def test_an_unencoded_password_is_masked_whole(url: str) -> None:
    assert REDACTOR(url).startswith("postgresql://django:***@127.0.0.1:1/db")


@pytest.mark.parametrize("url", UNENCODED)
def test_an_unencoded_password_stops_every_command_in_one_line_naming_the_key(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    (project / "old.db").write_bytes(b"")
    (project / "mapping.toml").write_text('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n')
    config = project / "golive.toml"
    config.write_text(config.read_text() + '[source]\nurl = "env:GOLIVE_TEST_SOURCE"\n[source.freeze]\nmethod = "postgres"\n'
                      '[target]\nurl = "env:GOLIVE_TEST_TARGET"\n[sync]\n')
    monkeypatch.setenv("GOLIVE_TEST_TARGET", url)
    monkeypatch.setenv("GOLIVE_TEST_SOURCE", url.replace("/db", "/old"))
    said = "the password holds characters a URL cannot carry as they are"
    for args, key in [(("sync", "--dry-run"), "source.url (GOLIVE_TEST_SOURCE)"),
                      (("freeze", "status"), "source.url (GOLIVE_TEST_SOURCE)"),
                      (("freeze", "on", "--yes"), "source.url (GOLIVE_TEST_SOURCE)")]:
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (2, f"error: {key}: {said} — {ENCODE}\n"), args
    for args in (("status",), ("status", "--json"), ("-v", "status"), ("config", "check")):
        result = cli(*args)
        assert "SECRET" not in result.stdout + result.stderr, args
        assert "target.url" in result.stdout + result.stderr, args
    sync = json.loads(cli("status", "--json").stdout)["parts"]["sync"]["error"]
    assert sync == f"target.url (GOLIVE_TEST_TARGET): {said} — {ENCODE}"


def test_the_resolved_password_is_registered_however_it_is_spelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_URL", "postgresql://django:p%40ss%2Fw%3Ard%25SECRET-9@127.0.0.1:1/db\n")
    url = SecretRef("env:GOLIVE_TEST_URL", "target.url").resolve(url=True)
    assert url == "postgresql://django:p%40ss%2Fw%3Ard%25SECRET-9@127.0.0.1:1/db"  # (the newline is no part of it)
    assert REDACTOR("said: p@ss/w:rd%SECRET-9, p%40ss%2Fw%3Ard%25SECRET-9") == "said: ***, ***"


def test_a_relative_sqlite_source_is_the_file_beside_the_config(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    from golive.config.loader import load_config

    config = project / "golive.toml"
    config.write_text(config.read_text() + '[source]\nurl = "sqlite:///old.db"\n')
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "old.db").write_bytes(b"")  # (another old.db where golive is started: never read)
    monkeypatch.chdir(elsewhere)
    assert load_config(config).source.url == f"sqlite:///{project}/old.db"
    shown = cli("-c", str(config), "config", "show")
    assert f'url = "sqlite:///{project}/old.db"' in shown.lines
    assert cli("-c", str(config), "config", "check").stderr == (
        f"warning: source.url: {project}/old.db does not exist; `golive -c {config} sync` will stop\n")
    config.write_text(config.read_text().replace('"sqlite:///old.db"', '"env:GOLIVE_TEST_SOURCE"'))
    monkeypatch.setenv("GOLIVE_TEST_SOURCE", "sqlite:///old.db")
    assert load_config(config).source.url.resolve(url=True) == f"sqlite:///{project}/old.db"
    monkeypatch.setenv("GOLIVE_TEST_SOURCE", "sqlite:////srv/old.db")
    assert load_config(config).source.url.resolve(url=True) == "sqlite:////srv/old.db"
