"""Values that would only fail later, far from the key (a Linode API URL, a freeze that cannot fit the source),
stop at load: one line naming the key and its line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

LINODE = '[linode]\ntoken = "env:X"\napi_url = "{}"\n'

CASES = [
    (LINODE.format("api.linode.com/v4"),
     "golive.toml:3: linode.api_url: 'api.linode.com/v4' is not an http(s):// URL — write https://api.linode.com/v4"
     " (or the URL `golive sandbox linode` prints)"),
    (LINODE.format("https://api.linode.com"),
     "golive.toml:3: linode.api_url: 'https://api.linode.com' does not end in the API's version, /v4 — write"
     " https://api.linode.com/v4 (every request would be answered 404)"),
    ('[source]\nurl = "sqlite:///old.db"\n[source.freeze]\nmethod = "postgres"\n',
     'golive.toml:3: source.freeze: method "postgres" needs a postgresql:// source; for SQLite use method "file" or'
     ' "command"'),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_a_value_that_would_fail_later_stops_at_load(project: Path, cli, text: str, message: str) -> None:
    (project / "golive.toml").write_text(text)
    result = cli("config", "check")
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")


def test_the_emulators_url_and_a_trailing_slash_are_taken(project: Path) -> None:
    from golive.config.loader import load_config

    for url, kept in (("http://127.0.0.1:18780/v4", "http://127.0.0.1:18780/v4"),
                      ("https://api.linode.com/v4/", "https://api.linode.com/v4")):
        (project / "golive.toml").write_text(LINODE.format(url))
        assert load_config(project / "golive.toml").linode.api_url == kept


def test_a_sqlite_source_from_the_environment_stops_a_postgres_freeze_naming_the_key(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "golive.toml").write_text('[project]\nname = "x"\n[source]\nurl = "env:GOLIVE_TEST_SOURCE"\n'
                                         '[source.freeze]\nmethod = "postgres"\n')
    monkeypatch.setenv("GOLIVE_TEST_SOURCE", "sqlite:///old.db")
    for args in (("freeze", "status"), ("freeze", "on", "--yes")):
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (
            2, 'error: source.freeze.method: "postgres" needs a postgresql:// source; source.url (env:GOLIVE_TEST_SOURCE)'
               ' is sqlite — fix source.url, or use method "file" or "command"\n'), args


CONTAINERS = ('[containers]\nimage = "{image}"\nhealth_path = "{health}"\n[containers.blue]\nname = "b"\nhost_port = 8001\n'
              '[containers.green]\nname = "{green}"\nhost_port = {port}\n')
PROXY = '[proxy]\nupstream_file = "up.conf"\npublic_url = "{}"\n'


@pytest.mark.parametrize(("text", "message"), [
    (CONTAINERS.format(image="Directory Web::latest", health="/healthz", green="g", port=8002),
     "golive.toml:4: containers.image: 'Directory Web::latest' is not an image reference ([registry/]name[:tag][@digest],"
     ' the name in lowercase, e.g. "directory-web:1.4")'),
    (CONTAINERS.format(image="web:1", health="healthz", green="g", port=8002),
     "golive.toml:5: containers.health_path: 'healthz' is a URL path: it starts with / (e.g. \"/healthz\")"),
    (CONTAINERS.format(image="web:1", health="/healthz", green="g", port=8001),
     "golive.toml:3: containers: blue and green have the same host_port 8001: give each its own"),
    (PROXY.format("127.0.0.1:18899"),
     "golive.toml:5: proxy.public_url: '127.0.0.1:18899' is not an http(s):// URL (e.g. \"https://example.org/\")"),
    (PROXY.format("http://127.0.0.1:99999"),  # (it passed, and every swap failed "answers nothing")
     "golive.toml:5: proxy.public_url: 'http://127.0.0.1:99999' has a port that is not one (1-65535)"),
    (PROXY.format("http://127.0.0.1:0/"),
     "golive.toml:5: proxy.public_url: 'http://127.0.0.1:0/' has a port that is not one (1-65535)"),
])
def test_a_container_or_proxy_value_that_would_fail_at_swap_time_stops_at_load(project: Path, cli, text: str,
                                                                               message: str) -> None:
    (project / "golive.toml").write_text(f'[project]\nname = "x"\n{text}')
    result = cli("config", "check")
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")


DNS = ('[dns]\ndomain = "example.org"\nrecords = [{{ name = "", type = "A" }}, {{ name = "", type = "AAAA" }}]\n'
       'old_target = "203.0.113.10"\nnew_target = "{new}"\nold_target_v6 = "2001:db8::10"\nnew_target_v6 = "{new6}"\n')


@pytest.mark.parametrize(("new", "new6", "message"), [
    ("203.0.113.10", "2001:db8::20",
     "golive.toml:3: dns: old_target and new_target are the same address 203.0.113.10: a switch would move nothing"
     " — set new_target to the new server's address"),
    ("198.51.100.20", "2001:0DB8::0010",  # (the same address, spelt otherwise)
     "golive.toml:3: dns: old_target_v6 and new_target_v6 are the same address 2001:db8::10: a switch would move"
     " nothing — set new_target_v6 to the new server's address"),
])
def test_a_new_target_equal_to_the_old_one_stops_at_load_naming_both_keys(project: Path, cli, new: str, new6: str,
                                                                          message: str) -> None:
    """Accepted: every switch changed nothing, and `status` said the records point at new and at old at once."""
    (project / "golive.toml").write_text(f'[project]\nname = "x"\n{DNS.format(new=new, new6=new6)}')
    result = cli("config", "check")
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
