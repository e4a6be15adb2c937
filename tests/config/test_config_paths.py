"""``~`` in the config's paths is the user's home, as a shell would read it, never a folder named "~"."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_a_tilde_in_a_path_is_the_home_folder(project: Path, cli, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    from golive.config.loader import load_config

    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    (home / "tok").write_text("tok-home-secret-1\n")
    (home / "tok").chmod(0o600)
    config = project / "golive.toml"
    config.write_text('[project]\nname = "x"\nstate_dir = "~/state"\n[linode]\ntoken = "file:~/tok"\n'
                      '[sync]\nmapping = "~/mapping.toml"\n'
                      '[source]\nurl = "sqlite:///~/old.db"\n[source.freeze]\nflag_file = "~/MAINTENANCE"\n')
    loaded = load_config(config)
    assert loaded.state_dir == home / "state"
    assert loaded.resolve(loaded.sync.mapping) == home / "mapping.toml"
    assert loaded.resolve(loaded.source.freeze.flag_file) == home / "MAINTENANCE"
    assert loaded.source.url == f"sqlite:///{home}/old.db"
    assert loaded.linode.token.resolve() == "tok-home-secret-1"
    assert cli("status").exit_code == 0  # (it only reads: the journal is made by the first run)
    assert cli("freeze", "on", "--yes").exit_code == 0, "a run"
    assert (home / "state" / "journal.db").is_file() and not (project / "~").exists()
    assert (home / "MAINTENANCE").is_file()
