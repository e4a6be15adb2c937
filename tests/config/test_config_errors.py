"""A table of bad configs -> the exact one-line message (key path + line) and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CASES = [
    ('[project]\nname = "x"\nstat_dir = "y"\n',
     "golive.toml:3: project.stat_dir: unknown key 'stat_dir' in project — did you mean 'state_dir'?"),
    ('bogus = 1\n',
     "golive.toml:1: bogus: unknown key 'bogus' in top level — known keys: project, linode, dns, source, target,"
     " sync, containers, proxy, verify, runbook, hooks"),
    ('[project]\nname = "x"\n\n[dns]\ndomain = "example.org"\nold_target = "1.2.3.4"\nnew_target = "5.6.7.8"\n',
     "golive.toml:4: dns.records: is required but missing — add it"),
    ('[linode]\ntoken = "abcd1234secret"\n',
     'golive.toml:2: linode.token: must be a reference "env:NAME" or "file:PATH", never the secret itself'),
    ('[dns]\ndomain = "e.org"\nold_target = "192.0.2.1"\nnew_target = "192.0.2.2"\nrecords = [{name = "@"}]\n',
     'golive.toml:5: dns.records[0].name: the apex is written "" (Linode never uses "@")'),
    ('[target]\nurl = "postgresql://u:hunter2@localhost/db"\n',
     'golive.toml:2: target.url: holds a password: put the URL in an environment variable and write url = "env:NAME"'),
    ('[containers]\nimage = "x"\n[containers.blue]\nname = "b"\nhost_port = "abc"\n'
     '[containers.green]\nname = "g"\nhost_port = 2\n',
     "golive.toml:5: containers.blue.host_port: Input should be a valid integer, unable to parse string as an integer"),
    ('[target]\nurl = "postgresql://localhost/db?user=u&password=hunter2"\n',
     'golive.toml:2: target.url: holds a password: put the URL in an environment variable and write url = "env:NAME"'),
    ('[containers]\nimage = "x"\nenv = { DATABASE_URL = "postgres://app:hunter2@db/app" }\n'
     'blue = { name = "b", host_port = 1 }\ngreen = { name = "g", host_port = 2 }\n',
     'golive.toml:3: containers.env.DATABASE_URL: holds a password: write "env:NAME" (a variable of golive\'s'
     ' environment) or move it to env_file'),
    ('[dns]\ndomain = "e.org"\nold_target = "192.0.2.1"\nnew_target = "192.0.2.2"\nrecords = [{name = ""}]\ncutover_ttl = 60\n',
     "golive.toml:6: dns.cutover_ttl: Linode would round 60s up to 120s; it keeps only 30, 120, 300, 3600, 7200,"
     " … seconds"),
    ('[containers]\nimage = "x"\nvolumes = ["/srv/media"]\n'
     'blue = { name = "b", host_port = 1 }\ngreen = { name = "g", host_port = 2 }\n',
     "golive.toml:3: containers.volumes: '/srv/media' is not \"/host/path:/container/path[:ro|rw]\" nor"
     " \"volume:/path[:ro|rw]\""),
    ('[dns]\ndomain = "e.org"\nold_target = "192.0.2.1"\nnew_target = "198.51.100.300"\nrecords = [{name = ""}]\n',
     "golive.toml:4: dns.new_target: '198.51.100.300' is not an IPv4 address"),
    ('[dns]\ndomain = "e.org"\nold_target = "2001:db8::1"\nnew_target = "192.0.2.2"\nrecords = [{name = ""}]\n',
     "golive.toml:3: dns.old_target: '2001:db8::1' is an IPv6 address; this key takes IPv4"
     " (old_target_v6/new_target_v6 for AAAA records)"),
    ('[dns]\ndomain = "e.org"\nold_target = "192.0.2.1"\nnew_target = "192.0.2.2"\nrecords = [{name = ""}]\n'
     'nameservers = ["127.0.0.1:abc"]\n',
     "golive.toml:6: dns.nameservers: '127.0.0.1:abc' is not host, host:port, ip:port or [v6]:port"
     " (port 1-65535)"),
    ('[project\nname = 1\n',
     "golive.toml:1: not valid TOML: Expected ']' at the end of a table declaration — fix the syntax at that line"),
    ('[[verify.checks]]\nname = "a"\nurl = "http://x"\n[[verify.checks]]\nname = "b"\nurll = "http://y"\n',
     "golive.toml:6: verify.checks[1].urll: unknown key 'urll' in verify.checks[1] — did you mean 'url'? (and 1 more)"),
    ('[source]\nurl = "mysql://x"\n',
     'golive.toml:2: source.url: must start with sqlite:/// or postgresql:// (or be "env:NAME")'),
    ('[source]\nurl = "sqlite:///x.db"\n[source.freeze]\nmethod = "file"\n',
     'golive.toml:3: source.freeze: method "file" needs flag_file = "/path/the/old/app/checks"'),
    ('[runbook]\nauto_rollback = "sometimes"\n',
     "golive.toml:2: runbook.auto_rollback: Input should be 'off', 'on-failure' or 'on-verify-failure'"),
    ('[sync]\nmax_rejects = -1\n',
     "golive.toml:2: sync.max_rejects: Input should be greater than or equal to 0"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_bad_config_gives_one_line_with_key_path_and_line(project: Path, cli, text: str, message: str) -> None:
    (project / "golive.toml").write_text(text)
    result = cli("config", "check")
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""


def test_missing_config_says_how_to_make_one(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("status")
    assert (result.exit_code, result.stderr) == (
        2, "error: no config file at golive.toml — run `golive init` to write one, or pass -c PATH\n")


def test_config_readable_by_others_is_refused_with_the_chmod(project: Path, cli) -> None:
    (project / "golive.toml").chmod(0o644)
    result = cli("config", "check")
    assert (result.exit_code, result.stderr) == (
        2, "error: config file golive.toml is readable by group/others (mode 0644) — run: chmod 600 golive.toml\n")


def test_secret_file_readable_by_others_is_refused(project: Path) -> None:
    from golive.errors import ConfigError
    from golive.secrets import SecretRef

    secret = project / "token"
    secret.write_text("s3cr3t-token\n")
    secret.chmod(0o640)
    with pytest.raises(ConfigError) as caught:
        SecretRef.parse(f"file:{secret}", "linode.token").resolve()
    assert str(caught.value) == (f"secret file {secret} is readable by group/others (mode 0640) — run: chmod 600 {secret}")
    secret.chmod(0o600)
    assert SecretRef.parse(f"file:{secret}").resolve() == "s3cr3t-token"


def test_config_option_and_env_var_choose_the_file(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "elsewhere.toml"
    other.write_text('[project]\nname = "other"\n')
    other.chmod(0o600)
    assert cli("-c", str(other), "config", "check").stdout.startswith(f"{other}: valid")
    assert cli("config", "check", env={"GOLIVE_CONFIG": str(other)}).stdout.startswith(f"{other}: valid")


def test_line_locator_handles_arrays_of_tables_and_subtables() -> None:
    from golive.config.loader import locate_lines

    text = '[[table]]\nsource = "a"\n[table.columns]\nid = "id"\n[[table]]\nsource = "b"\n[table.columns]\nx = "y"\n'
    lines = locate_lines(text)
    assert lines[("table", 0, "source")] == 2
    assert lines[("table", 0, "columns", "id")] == 4
    assert lines[("table", 1, "columns", "x")] == 8


def test_check_names_container_secrets_that_do_not_resolve_and_an_env_file_others_can_read(project: Path, cli) -> None:
    (project / "golive.toml").write_text(
        '[containers]\nimage = "x"\nenv_file = "app.env"\nenv = { SECRET_KEY = "env:GOLIVE_TEST_NOT_SET", DEBUG = "0" }\n'
        'blue = { name = "b", host_port = 1 }\ngreen = { name = "g", host_port = 2 }\n')
    missing = cli("config", "check")
    assert missing.exit_code == 0
    assert missing.stderr.splitlines() == [
        "warning: containers.env.SECRET_KEY = 'env:GOLIVE_TEST_NOT_SET' does not resolve here (not set); commands that"
        " need it will stop",
        f"warning: containers.env_file {project}/app.env does not exist; `golive swap` will stop"]
    (project / "app.env").write_text("DATABASE_URL=postgres://app:pw-0dd1@db/app\n")
    (project / "app.env").chmod(0o640)
    shared = cli("config", "check", env={"GOLIVE_TEST_NOT_SET": "set"})
    assert shared.stderr == (f"warning: containers.env_file {project}/app.env is readable by group/others (mode 0640);"
                             f" `golive swap` will stop (run: chmod 600 {project}/app.env)\n")


def test_files_golive_cannot_read_or_make_are_one_line_with_exit_2(project: Path, cli) -> None:
    (project / "conf.d").mkdir()
    assert (cli("-c", "conf.d", "status").exit_code, cli("-c", "conf.d", "status").stderr) == (
        2, "error: conf.d is not a file — pass -c the path of golive.toml itself\n")
    latin = project / "latin1.toml"
    latin.write_bytes(b'[project]\nname = "caf\xe9"\n')
    latin.chmod(0o600)
    assert (cli("-c", "latin1.toml", "config", "check").exit_code, cli("-c", "latin1.toml", "config", "check").stderr) == (
        2, "error: latin1.toml:2: not UTF-8 text (byte 0xe9) — save the file as UTF-8\n")
    (project / "golive.toml").write_text('[project]\nname = "x"\nstate_dir = "golive.toml/state"\n')
    made = cli("status")
    assert (made.exit_code, made.stderr) == (2, f"error: cannot make the state dir {project}/golive.toml/state: Not a"
                                                " directory — fix [project].state_dir, or that folder's permissions\n")


def test_a_relative_file_secret_is_read_from_the_configs_folder_and_checked_for_its_mode(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    (project / "secrets").mkdir()
    token = project / "secrets" / "linode-token"
    token.write_text("tok-file-secret-1234\n")
    token.chmod(0o644)
    config = project / "golive.toml"
    config.write_text(config.read_text() + '\n[linode]\ntoken = "file:secrets/linode-token"\n')
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # golive started from another folder, -c to the config
    checked = cli("-c", str(config), "config", "check")
    assert checked.exit_code == 0
    assert checked.stderr == (f"warning: linode.token {token} is readable by group/others (mode 0644); commands that"
                              f" need it will stop (run: chmod 600 {token})\n")
    token.chmod(0o600)
    assert cli("-c", str(config), "config", "check").stderr == ""  # (found from the config's folder)
    from golive.config.loader import load_config

    assert load_config(config).linode.token.resolve() == "tok-file-secret-1234"


def test_config_check_says_a_url_secret_file_is_too_open_once_and_readably(project: Path, cli) -> None:
    """`config check` with a `file:` database URL of mode 0644 warned twice, once garbled: "source.url =
    'file:…' does not resolve here (: run: chmod 600 …)"."""
    secret = project / "url"
    secret.write_text("postgresql://app:pw-12345@127.0.0.1:1/old\n")
    secret.chmod(0o644)
    config = project / "golive.toml"
    config.write_text(config.read_text() + f'[source]\nurl = "file:{secret}"\n')
    checked = cli("config", "check")
    assert checked.exit_code == 0
    assert checked.stderr == (f"warning: source.url {secret} is readable by group/others (mode 0644); commands that"
                              f" need it will stop (run: chmod 600 {secret})\n")


def test_strict_check_fails_on_what_would_stop_a_command_later_for_scripts(project: Path, cli) -> None:
    """A script gating the night on `config check` passed with exit 0 while the token and the database URL did not
    resolve (the runbook's "every secret reference resolvable"): `--strict` makes any warning exit 1, and --json
    lists the warnings."""
    (project / "golive.toml").write_text('[linode]\ntoken = "env:GOLIVE_TEST_NOT_SET"\n')
    plain = cli("config", "check", "--json")
    assert plain.exit_code == 0
    assert json.loads(plain.stdout)["warnings"] == [
        "linode.token = 'env:GOLIVE_TEST_NOT_SET' does not resolve here (not set); commands that need it will stop"]
    strict = cli("config", "check", "--strict")
    assert (strict.exit_code, strict.stderr.splitlines()[-1]) == (1, (
        "error: config check --strict: 1 warning(s); the first: linode.token = 'env:GOLIVE_TEST_NOT_SET' does not"
        " resolve here (not set); commands that need it will stop — fix what the warnings name (or check without"
        " --strict)"))
    doc = json.loads(cli("config", "check", "--strict", "--json").stdout)
    assert (doc["ok"], doc["exit_code"]) == (False, 1)
    assert doc["error"]["warnings"] == [  # (the failing run's --json had dropped them)
        "linode.token = 'env:GOLIVE_TEST_NOT_SET' does not resolve here (not set); commands that need it will stop"]
    assert cli("config", "check", "--strict", env={"GOLIVE_TEST_NOT_SET": "tok"}).exit_code == 0
