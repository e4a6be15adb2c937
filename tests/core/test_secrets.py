"""Passwords in database URLs are masked in every form libpq takes them, wherever they are printed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from golive.secrets import REDACTOR, SecretRef


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:pa/ss@db.internal/site", "postgresql://app:***@db.internal/site"),
    ("postgresql://db.internal/site?user=app&password=qs-secret-42", "postgresql://db.internal/site?user=app&password=***"),
    ("host=db.internal user=app password=kw-secret-42 dbname=site", "host=db.internal user=app password=*** dbname=site"),
    ("host=db.internal password='two words' dbname=site", "host=db.internal password=*** dbname=site"),
    ("postgresql://app:p%40ss@db/site?sslpassword=key-pass", "postgresql://app:***@db/site?sslpassword=***"),
])
def test_every_form_of_a_database_password_is_masked(url: str, shown: str) -> None:
    assert REDACTOR(url) == shown


def test_text_that_only_talks_about_passwords_is_left_alone() -> None:
    for text in ("FATAL: password authentication failed for user app", "http://127.0.0.1:8001/healthz",
                 "tcp://127.0.0.1:2375"):
        assert REDACTOR(text) == text


def test_a_resolved_url_registers_its_password_in_each_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_URL", "postgresql://app:p%40ss-word-9@db/site")
    SecretRef.parse("env:GOLIVE_TEST_URL").resolve(url=True)
    assert REDACTOR("libpq said: p@ss-word-9 and p%40ss-word-9") == "libpq said: *** and ***"


def test_status_never_shows_a_query_string_password(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the connection error quotes the URL
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("GOLIVE_TEST_TARGET", f"postgresql://127.0.0.1:{port}/site?user=app&password=qs-secret-42")
    config = project / "golive.toml"
    config.write_text(config.read_text() + '\n[target]\nurl = "env:GOLIVE_TEST_TARGET"\n')
    for args in (("status",), ("status", "--json"), ("-v", "status")):
        result = cli(*args)
        assert "qs-secret-42" not in result.stdout + result.stderr, args
        assert "password=***" in result.stdout + result.stderr, (args, result.stdout, result.stderr)
    assert json.loads(cli("status", "--json").stdout)["parts"]["sync"]["error"].startswith(
        f"cannot connect to the target database postgresql://127.0.0.1:{port}/site?user=app&password=*** ")


def test_a_short_secret_never_garbles_what_an_undo_reads_back(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A weak DB password "golive" masked in the journal's step record turned the backup's path into
    ".../.***/backups/...": the data rollback then found no backup. Free text is still masked."""
    from golive.core.journal import Journal

    REDACTOR.add("golive")
    request.addfinalizer(lambda: REDACTOR._values.discard("golive"))  # (the redactor is the process's: leave it so)
    journal = Journal(tmp_path / ".golive" / "journal.db")
    run = journal.start_run("sync", {}, [("sync.run", "sync all tables", {})])
    record = {"backup": str(tmp_path / ".golive" / "backups" / "target-1.dump"), "upstream": "http://127.0.0.1:8001"}
    journal.step_intent(run, 1, record)
    journal.step_applied(run, 1, record)
    journal.event(run, "log", message="connected as golive")
    (step,) = journal.steps(run)
    assert step.record == record and step.before == record
    assert journal.events(run)[-1]["message"] == "connected as ***"
    journal.close()


def test_a_database_password_a_freeze_command_prints_is_masked_though_nothing_resolved_the_url(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A freeze command that failed to log in printed the old database's password: it reached stderr, the journal,
    `history --json` and the report, because no gateway of `freeze on` had resolved [source].url (and so
    registered its password); only a whole URL with a password was masked, by its pattern."""
    import uuid

    password = f"Own3r%pw@x-{uuid.uuid4().hex[:6]}"  # (percent-encoded in the URL; printed as libpq reads it)
    monkeypatch.setenv("GOLIVE_TEST_SRC", f"postgresql://owner:{password.replace('%', '%25').replace('@', '%40')}"
                                          "@127.0.0.1:1/old")
    on = project / "on.sh"
    on.write_text(f"#!/bin/sh\necho 'auth failed, tried password {password}' >&2\nexit 3\n")
    on.chmod(0o755)
    config = project / "golive.toml"
    config.write_text('[project]\nname = "leak"\n\n[source]\nurl = "env:GOLIVE_TEST_SRC"\n\n[source.freeze]\n'
                      f'method = "command"\non = ["{on}"]\noff = ["true"]\nstatus = ["false"]\n')
    failed = cli("freeze", "on", "--yes")
    assert failed.exit_code == 1 and "auth failed, tried password ***" in failed.stderr, failed.stderr
    run_id = json.loads(cli("history", "--json").stdout)["runs"][0]["id"]
    said = failed.stdout + failed.stderr + cli("history", run_id, "--json").stdout + \
        cli("report", run_id, "-o", "-").stdout
    assert password not in said and password not in (project / ".golive" / "journal.db").read_bytes().decode("latin-1")
