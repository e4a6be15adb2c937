"""Secrets as the config names them: an empty one is one line naming its key; surrounding whitespace is no part
of it; a literal secret-looking container variable is masked and warned about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _linode(project: Path, token: str) -> Path:
    config = project / "golive.toml"
    config.write_text(f'[project]\nname = "x"\n[linode]\ntoken = "{token}"\napi_url = "http://127.0.0.1:1/v4"\n'
                      '[dns]\ndomain = "example.org"\nrecords = [{name = ""}]\nold_target = "192.0.2.1"\n'
                      'new_target = "192.0.2.2"\n')
    return config


def test_an_empty_secret_file_or_variable_is_one_line_naming_the_key(project: Path, cli) -> None:
    (project / "secrets").mkdir()
    secret = project / "secrets" / "linode"
    secret.write_text("  \n")
    secret.chmod(0o600)
    _linode(project, "file:secrets/linode")
    result = cli("dns", "show")
    assert (result.exit_code, result.stderr) == (
        2, f"error: secret file {secret} is empty (linode.token) — put the token in it\n")
    assert cli("config", "check").stderr == (
        f"warning: linode.token = 'file:{secret}' does not resolve here (empty); commands that need it will stop\n")
    _linode(project, "env:GOLIVE_TEST_TOKEN")
    result = cli("dns", "show", env={"GOLIVE_TEST_TOKEN": ""})
    assert (result.exit_code, result.stderr) == (
        2, "error: environment variable GOLIVE_TEST_TOKEN is empty (linode.token) — export GOLIVE_TEST_TOKEN=… (the"
           " token) before running golive\n")
    unset = cli("dns", "show")
    assert unset.stderr == ("error: environment variable GOLIVE_TEST_TOKEN is not set (linode.token) — export"
                            " GOLIVE_TEST_TOKEN=… before running golive\n")


def test_a_variable_secret_loses_its_trailing_newline_as_a_file_secret_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from golive.secrets import SecretRef

    monkeypatch.setenv("GOLIVE_TEST_TOKEN", "tok-SECRET-12345\r\n")
    assert SecretRef("env:GOLIVE_TEST_TOKEN", "linode.token").resolve() == "tok-SECRET-12345"


def test_a_literal_secret_looking_container_variable_is_masked_and_warned_about(project: Path, cli) -> None:
    (project / "golive.toml").write_text(
        '[containers]\nimage = "x"\nenv = { SECRET_KEY = "django-insecure-0dd1", DB_PASSWORD = "hunter2-x",'
        ' DEBUG = "0", API_HOST = "127.0.0.1" }\nblue = { name = "b", host_port = 1 }\ngreen = { name = "g", host_port = 2 }\n')
    shown = cli("config", "show")
    assert 'env = {SECRET_KEY = "***", DB_PASSWORD = "***", DEBUG = "0", API_HOST = "127.0.0.1"}' in shown.lines
    env = json.loads(cli("config", "show", "--json").stdout)["config"]["containers"]["env"]
    assert env == {"SECRET_KEY": "***", "DB_PASSWORD": "***", "DEBUG": "0", "API_HOST": "127.0.0.1"}
    checked = cli("config", "check")
    assert checked.exit_code == 0
    assert checked.stderr.splitlines() == [
        f'warning: containers.env.{name} is written here as it is; a secret belongs in env_file or behind "env:NAME"'
        " (it is masked in golive's output either way)" for name in ("SECRET_KEY", "DB_PASSWORD")]
