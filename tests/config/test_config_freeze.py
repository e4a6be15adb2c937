"""[source.freeze]: what a method needs is required at load, naming the key, so `config check` finds it (not the
first freeze command at 2 a.m.)."""

from __future__ import annotations

from pathlib import Path

import pytest

COMMAND = '[project]\nname = "x"\n[source]\nurl = "sqlite:///old.db"\n[source.freeze]\nmethod = "command"\n{}'


@pytest.mark.parametrize(("keys", "message"), [
    ('on = ["true"]\noff = ["true"]\n',
     'golive.toml:5: source.freeze: method "command" needs status = ["…"]: exit 0 = frozen, 1 = not frozen (golive'
     " checks the freeze with it after on and off)"),
    ('on = ["true"]\nstatus = ["true"]\n',
     'golive.toml:5: source.freeze: method "command" needs off = ["…"]: the command that lets writes in again (the'
     " undo runs it whatever status says: it must be safe to run twice)"),
    ('off = ["true"]\nstatus = ["true"]\n',
     'golive.toml:5: source.freeze: method "command" needs on = ["…"]: the command that stops writes (maintenance'
     " on)"),
])
def test_a_command_freeze_without_its_three_commands_stops_config_check(project: Path, cli, keys: str,
                                                                          message: str) -> None:
    config = project / "golive.toml"
    config.write_text(COMMAND.format(keys))
    config.chmod(0o600)
    for args in (("config", "check"), ("freeze", "status"), ("freeze", "on", "--yes")):
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n"), args


@pytest.mark.parametrize(("key", "value", "message"), [
    ("confirm_timeout", "-1", "Input should be greater than or equal to 0"),
    ("status_timeout", "0", "Input should be greater than 0"),
])
def test_the_freeze_waits_are_bounded(project: Path, cli, key: str, value: str, message: str) -> None:
    config = project / "golive.toml"
    config.write_text(COMMAND.format(f'on = ["true"]\noff = ["true"]\nstatus = ["true"]\n{key} = {value}\n'))
    config.chmod(0o600)
    result = cli("config", "check")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: golive.toml:10: source.freeze.{key}: {message}")


def test_a_complete_command_freeze_is_taken_with_its_default_waits(project: Path) -> None:
    from golive.config.loader import load_config

    config = project / "golive.toml"
    config.write_text(COMMAND.format('on = ["true"]\noff = ["true"]\nstatus = ["true"]\n'))
    config.chmod(0o600)
    freeze = load_config(config).source.freeze
    assert [freeze.wait(key) for key in ("timeout", "status_timeout", "confirm_timeout")] == [120, 30, 10]
    config.write_text(COMMAND.format('on = ["true"]\noff = ["true"]\nstatus = ["true"]\nconfirm_timeout = 0\n'))
    assert load_config(config).source.freeze.wait("confirm_timeout") == 0  # (asked once)
