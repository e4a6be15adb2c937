"""The CLI through the real Typer app: exact user-visible lines, --json shapes, exit codes."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from golive.cli.application import App
from golive.steps.files import WriteFile


def applied_run(project: Path, n: int = 2) -> str:
    app = App(project / "golive.toml")
    outcome = app.runner().run("test", [WriteFile(path=str(project / f"f{i}.txt"), content=f"{i}\n")
                                        for i in range(1, n + 1)])
    assert outcome.run_id is not None
    return outcome.run_id


def test_help_lists_only_real_commands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    commands = re.findall(r"^│ (\w+)\s{2,}", result.stdout, re.M)
    assert commands == ["init", "status", "history", "report", "rollback", "config", "lock", "freeze", "sync", "dns",
                        "swap", "sandbox"]
    assert "Exit codes: 0 ok" in result.stdout


def test_flags_show_no_value_type_and_groups_offer_no_shell_completion(cli) -> None:
    shown = cli("swap", "--help", env={"COLUMNS": "120"}).stdout
    assert re.search(r"^│ --yes\s+-y\s+Do not ask", shown, re.M)  # not `--yes -y <bool>`: it takes no value
    assert re.search(r"^│ --to\s+<str>\s+green or blue", shown, re.M)
    assert "completion" not in shown


def test_a_reader_that_stops_early_gets_no_error_from_golive(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`golive history | head`: head leaves while golive still writes. That write's BrokenPipeError was
    rendered as "error: internal error" (on a reader that is gone, and on stderr); it is click's to end quietly."""
    def reader_gone(self: App, *args: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(App, "say", reader_gone)
    piped = cli("history")
    assert (piped.exit_code, piped.stdout, piped.stderr) == (1, "", "")


def test_version(cli) -> None:
    from golive import __version__

    assert cli("--version").stdout == f"golive {__version__}\n"


def test_init_writes_private_files_that_validate(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("init")
    assert result.lines == [
        "wrote golive.toml", "wrote mapping.toml", "next: edit them, then run `golive config check`",
        "Apache: the site golive swaps needs (see README, Blue-green swap):",
        "    # golive owns /etc/apache2/golive-upstream.conf: one line, `Define GOLIVE_UPSTREAM http://127.0.0.1:<port>`",
        "    Include /etc/apache2/golive-upstream.conf",
        "    <VirtualHost *:80>",
        "        ProxyPreserveHost On",
        "        # disablereuse: a graceful reload must not leave pooled connections to the old colour",
        "        ProxyPass / ${GOLIVE_UPSTREAM}/ disablereuse=On retry=0",
        "        ProxyPassReverse / ${GOLIVE_UPSTREAM}/",
        "        # which colour served a request, told only to golive's own probes: a swap and its undo then know",
        "        # when the graceful reload has taken effect, with or without version_path (`a2enmod headers`)",
        "        <IfModule mod_headers.c>",
        """            Header always set X-Golive-Upstream "${GOLIVE_UPSTREAM}" "expr=req('X-Golive-Probe') == '1'\"""",
        "        </IfModule>",
        "    </VirtualHost>",
    ]
    assert (tmp_path / "golive.toml").stat().st_mode & 0o777 == 0o600
    check = cli("config", "check", env={"LINODE_TOKEN": "", "TARGET_DATABASE_URL": ""})
    assert check.exit_code == 0
    assert check.stdout == ("golive.toml: valid — sections: project, linode, dns, source, target, sync, containers,"
                            " proxy, verify, runbook, hooks\n")
    assert check.stderr.splitlines() == [
        "warning: linode.token = 'env:LINODE_TOKEN' does not resolve here (empty); commands that need it will stop",
        "warning: target.url = 'env:TARGET_DATABASE_URL' does not resolve here (empty); commands that need it will stop",
        "warning: source.url: /srv/flask/directory.db does not exist; `golive sync` will stop",
    ]
    again = cli("init")
    assert (again.exit_code, again.stderr) == (
        2, "error: golive.toml, mapping.toml already exist — pass --force to overwrite them\n")
    assert cli("init", "--force").exit_code == 0


def test_the_templates_other_freeze_methods_validate_as_written_once_uncommented(tmp_path: Path, cli,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init").exit_code == 0
    config = tmp_path / "golive.toml"
    written = config.read_text()
    block = written[written.index("[source.freeze]"):written.index("[target]")]
    lines = block.splitlines()
    command = [lines[0]] + [line[2:] for line in lines if line.startswith("# ") and "postgres" not in line]
    config.write_text(written.replace(block, "\n".join(command) + "\n\n"))
    env = {"LINODE_TOKEN": "", "TARGET_DATABASE_URL": ""}
    check = cli("config", "check", env=env)
    assert check.exit_code == 0, check.stderr
    shown = cli("config", "show", "--json", env=env)
    assert json.loads(shown.stdout)["config"]["source"]["freeze"] == {
        "method": "command", "on": ["/srv/flask/maintenance", "on"],
        "off": ["/srv/flask/maintenance", "off"], "status": ["/srv/flask/maintenance", "status"], "timeout": 120.0}
    postgres = [lines[0]] + [line[2:] for line in lines if line.startswith('# method = "postgres"')]
    config.write_text(written.replace(block, "\n".join(postgres) + "\n\n").replace(
        'url = "sqlite:////srv/flask/directory.db"', 'url = "env:SOURCE_DATABASE_URL"'))
    assert cli("config", "check", env={**env, "SOURCE_DATABASE_URL": ""}).exit_code == 0


def test_init_switch_map_writes_map_mode_and_prints_its_vhost(tmp_path: Path, cli,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("init", "--switch", "map")
    assert result.lines[3:] == [
        "Apache: the site golive swaps needs (see README, Blue-green swap):",
        "    # golive owns /etc/apache2/golive-upstream.map: one line, `upstream http://127.0.0.1:<port>`, readable by",
        "    # Apache's user; mod_rewrite re-reads it when it changes, so a switch needs no reload",
        "    <VirtualHost *:80>",
        "        ProxyPreserveHost On",
        "        RewriteEngine On",
        '        RewriteMap golive "txt:/etc/apache2/golive-upstream.map"',
        "        # the path as the client sent it, still encoded (a %3F stays %3F); the query string follows",
        '        RewriteCond %{THE_REQUEST} "^\\S+\\s+(/[^?\\s]*)"',
        '        RewriteRule "^" "${golive:upstream}%1" [P,L,NE]',
        '        RewriteRule "^/(.*)$" "${golive:upstream}/$1" [P,L]',
        "        ProxyPassReverse / http://127.0.0.1:8001/",
        "        ProxyPassReverse / http://127.0.0.1:8002/",
        '        <Proxy "http://127.0.0.1:8001">',
        "            ProxySet retry=0",
        "        </Proxy>",
        '        <Proxy "http://127.0.0.1:8002">',
        "            ProxySet retry=0",
        "        </Proxy>",
        "    </VirtualHost>",
    ]
    shown = cli("config", "show", "--json", env={"LINODE_TOKEN": "", "TARGET_DATABASE_URL": ""})
    proxy = json.loads(shown.stdout)["config"]["proxy"]
    assert (proxy["switch"], proxy["upstream_file"]) == ("map", "/etc/apache2/golive-upstream.map")
    assert cli("init", "--force", "--switch", "nginx").stderr == "error: --switch must be reload or map, not 'nginx'\n"


def test_config_show_never_shows_a_secret_value(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli("init")
    env = {"LINODE_TOKEN": "tok-9f8e7d6c5b4a", "TARGET_DATABASE_URL": "postgresql://u:pw-very-secret@h/db"}
    shown = cli("config", "show", env=env)
    assert 'token = "env:LINODE_TOKEN"' in shown.lines
    assert 'url = "env:TARGET_DATABASE_URL"' in shown.lines
    as_json = json.loads(cli("config", "show", "--json", env=env).stdout)
    assert as_json["ok"] is True and as_json["config"]["linode"]["token"] == "env:LINODE_TOKEN"
    for out in (shown.stdout, shown.stderr, json.dumps(as_json)):
        assert "tok-9f8e7d6c5b4a" not in out and "pw-very-secret" not in out


def test_config_show_prints_toml_that_golive_reads_back_the_same(tmp_path: Path, cli,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    monkeypatch.chdir(tmp_path)
    cli("init")
    env = {"LINODE_TOKEN": "tok", "TARGET_DATABASE_URL": "postgresql://u@h/db"}
    shown = cli("config", "show", env=env)
    assert [line for line in shown.lines if line.startswith("freeze = ")] == [  # (was JSON: {"method": "file", …})
        'freeze = {method = "file", flag_file = "/srv/flask/MAINTENANCE"}']
    tomllib.loads(shown.stdout)
    again = tmp_path / "shown.toml"
    again.write_text(shown.stdout)
    again.chmod(0o600)
    assert cli("-c", str(again), "config", "show", env=env).stdout == shown.stdout


def test_config_check_loads_the_mapping_a_sync_section_names(project: Path, cli) -> None:
    config = project / "golive.toml"
    config.write_text(config.read_text() + '\n[sync]\nmapping = "mapping.toml"\n')
    missing = cli("config", "check", "--json")
    assert (missing.exit_code, missing.stderr) == (2, f"error: no mapping file at {project}/mapping.toml — set"
                                                      " [sync].mapping, or run `golive init` for an example\n")
    assert json.loads(missing.stdout)["error"]["type"] == "ConfigError"  # (one document)
    users = '[[table]]\nsource = "{}"\ntarget = "people"\nkey = "id"\n[table.columns]\nid = "id"\n'
    (project / "mapping.toml").write_text(users.format("user") + "\n" + users.format("admin"))
    twice = cli("config", "check")
    assert (twice.exit_code, twice.stdout, twice.stderr) == (
        2, "", f"error: {project}/mapping.toml:10: table people is fed by two [[table]] entries (user, admin) — use one"
               ' query = "SELECT … UNION ALL …"\n')
    (project / "mapping.toml").write_text(users.format("user"))
    valid = cli("config", "check", "--json")
    assert valid.exit_code == 0, valid.stderr
    assert json.loads(valid.stdout)["mapping"] == f"{project}/mapping.toml"
    # media paths (`files`) with no [[sync.media]] folder: nothing checks or copies them — said, not silent
    (project / "mapping.toml").write_text(users.format("user").replace('key = "id"', 'key = "id"\nfiles = ["photo"]')
                                          + 'photo = "photo"\n')
    said = "mapping: table people: files = ['photo'] names media paths, but no [[sync.media]] folder is configured:" \
           " they are not checked and no file is copied"
    warned = cli("config", "check", "--strict", "--json")
    assert warned.exit_code == 1 and json.loads(warned.stdout)["error"]["warnings"] == [said], warned.stdout
    config.write_text(config.read_text() + f'[[sync.media]]\nfrom = "{project}"\nto = "{project}/media"\n')
    assert cli("config", "check", "--strict").exit_code == 0


def test_status_on_a_fresh_project(project: Path, cli) -> None:
    result = cli("status")
    assert result.lines == ["config:    golive.toml", f"state:     {project}/.golive", "lock:      free",
                            "last run:  none"]
    doc = json.loads(cli("status", "--json").stdout)
    assert doc == {"ok": True, "config": "golive.toml", "state_dir": f"{project}/.golive",
                   "lock": {"state": "free", "holder": None}, "last_run": None, "rollback_would_undo": None,
                   "rollback_command": None, "parts": {}, "state": {}}


def test_history_and_status_after_a_run(project: Path, cli) -> None:
    run_id = applied_run(project)
    status = cli("status")
    assert status.lines[3:] == [f"last run:  {run_id} test — succeeded",
                                f"rollback:  would undo 2 step(s) of run {run_id} (`golive rollback`)"]
    history = cli("history")
    assert history.lines[0].split() == ["RUN", "COMMAND", "STARTED", "(UTC)", "TOOK", "STATUS", "APPLIED/UNDONE/STEPS"]
    assert history.lines[1].split()[0:2] == [run_id, "test"]
    assert history.lines[1].split()[-2:] == ["succeeded", "2/0/2"]
    one = cli("history", run_id)
    assert one.lines[0].startswith(f"run {run_id}: test — succeeded (by ")
    assert [line.split()[:4] for line in one.lines[2:]] == [
        ["1", "write", f"{project}/f1.txt", "applied"], ["2", "write", f"{project}/f2.txt", "applied"]]
    doc = json.loads(cli("history", run_id, "--json").stdout)
    assert set(doc) == {"ok", "run", "steps", "events"}
    assert [s["status"] for s in doc["steps"]] == ["applied", "applied"]
    assert [e["kind"] for e in doc["events"]][:2] == ["run.start", "step.start"]
    missing = cli("history", "nope")
    assert (missing.exit_code, missing.stderr) == (2, "error: no run nope in the journal — `golive history` lists the runs\n")


def test_rollback_dry_run_then_prompt_needs_yes_without_tty(project: Path, cli) -> None:
    run_id = applied_run(project)
    dry = cli("rollback", "--dry-run")
    assert dry.exit_code == 0
    assert dry.lines[0] == f"Plan: rollback of run {run_id} (test) — 2 step(s), 2 change(s)"
    assert dry.lines[1] == f"  [2] write {project}/f2.txt  (applied)"
    assert dry.lines[2].startswith(f"      file {project}/f2.txt: delete (was 2 bytes sha256:")
    assert (project / "f2.txt").exists()
    asked = cli("rollback")
    assert asked.exit_code == 2
    assert asked.stderr == (f"error: rollback of run {run_id} (test) needs confirmation and there is no terminal"
                            " to ask — review it with --dry-run, then pass --yes\n")
    assert (project / "f2.txt").exists()


def test_rollback_json_is_ndjson_events_then_a_result(project: Path, cli) -> None:
    run_id = applied_run(project)
    result = cli("rollback", "--yes", "--json")
    events = [json.loads(line) for line in result.lines]
    assert [e["event"] for e in events] == ["run.start", "undo.start", "log", "undo.done", "undo.start", "log",
                                            "undo.done", "run.done", "result"]
    assert events[2]["message"] == f"file {project}/f2.txt: remove" and events[2]["phase"] == "undo"
    assert events[-1]["ok"] is True and events[-1]["target"] == run_id
    assert not (project / "f1.txt").exists()
    again = json.loads(cli("rollback", "--yes", "--json").stdout)
    # NDJSON too, ending in a result
    assert again == {"event": "result", "ok": True, "rolled_back": [], "target": None, "targets": [], "rollbacks": [],
                     "steps": [], "notices": [], "run": None, "status": "nothing to do"}


def test_a_rollback_says_when_an_older_run_still_has_steps_to_undo(project: Path, cli) -> None:
    older = applied_run(project, 1)  # (an interrupted run, then the same command again: two runs)
    app = App(project / "golive.toml")
    newer = app.runner().run("test", [WriteFile(path=str(project / "g.txt"), content="g\n")]).run_id
    first = cli("rollback", "--yes", "--json")
    assert first.stderr == (f"warning: run {older} (test) still has applied steps: `golive rollback` again would undo"
                            " that test too (`golive rollback --dry-run` shows what it puts back)\n")
    assert json.loads(first.lines[-1])["target"] == newer and json.loads(first.lines[-1])["still_undoable"] == older
    second = cli("rollback", "--yes")
    assert second.exit_code == 0 and second.stderr == ""  # the last one: nothing more to say


def test_json_error_document(project: Path, cli) -> None:
    result = cli("history", "nope", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"ok": False, "exit_code": 2, "error": {
        "type": "UsageError", "message": "no run nope in the journal", "hint": "`golive history` lists the runs"}}


def test_report_to_stdout_with_json_is_a_usage_error_not_markdown(project: Path, cli) -> None:
    run_id = applied_run(project)
    both = cli("report", run_id, "--format", "md", "-o", "-", "--json")
    assert (both.exit_code, both.stderr) == (2, "error: -o - and --json both write to stdout — write the report to a file"
                                                " (-o PATH, or the default) and --json names it, or drop --json to read"
                                                " the report on stdout\n")
    assert json.loads(both.stdout)["error"]["type"] == "UsageError"  # (one document, no Markdown)
    written = json.loads(cli("report", run_id, "--json").stdout)
    assert written == {"ok": True, "run": run_id, "format": "md", "path": str(project / ".golive" / "reports" / f"{run_id}.md")}


@pytest.mark.parametrize("fault", ["garbage", "1:after", "1:after:explode", "1:after:raise:x", ":after:raise"])
def test_a_malformed_golive_fault_is_a_usage_error_naming_it(project: Path, cli, fault: str) -> None:
    applied_run(project)
    result = cli("rollback", "--yes", "--json", env={"GOLIVE_FAULT": fault})
    assert (result.exit_code, result.stderr) == (2, f"error: GOLIVE_FAULT entry {fault!r} is not WHERE:POINT:ACTION with"
                                                    " ACTION one of raise, kill, pause, hold — e.g."
                                                    " GOLIVE_FAULT=2:after:raise (WHERE a step number or kind, POINT a"
                                                    " checkpoint or *), or unset GOLIVE_FAULT\n")
    assert json.loads(result.stdout)["error"]["type"] == "UsageError"
    assert (project / "f2.txt").exists()  # nothing was undone


def test_a_flag_without_the_one_it_goes_with_is_a_usage_error(project: Path, cli) -> None:
    result = cli("sync", "--deep")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --deep goes with --verify-only — golive sync --verify-only --deep"


def test_bad_options_are_one_line_naming_the_option_and_where_help_is(project: Path, cli) -> None:
    said = {args: cli(*args) for args in [("sync", "--nope"), ("--nope",), ("sync", "--max-rejects", "-1"),
                                          ("history", "-n", "0"), ("swap", "finalize", "--nope")]}
    assert {args: (r.exit_code, r.stdout, r.stderr) for args, r in said.items()} == {  # (click drew a box of usage)
        ("sync", "--nope"): (2, "", "error: No such option: --nope — `golive sync --help` lists what it takes\n"),
        ("--nope",): (2, "", "error: No such option: --nope — `golive --help` lists what it takes\n"),
        ("sync", "--max-rejects", "-1"): (2, "", "error: Invalid value for '--max-rejects': Input should be greater than"
                                                 " or equal to 0 — `golive sync --help` lists what it takes\n"),
        ("history", "-n", "0"): (2, "", "error: Invalid value for '--limit' / '-n': Input should be greater than or"
                                        " equal to 1 — `golive history --help` lists what it takes\n"),
        ("swap", "finalize", "--nope"): (2, "", "error: No such option: --nope (Possible options: --force) —"
                                                " `golive swap finalize --help` lists what it takes\n"),
    }
    assert "Usage:" in cli("lock").stdout  # a group run bare still shows its help
    for args in (("history", "--json", "-n", "0"), ("--json-nope",), ("sync", "--json", "--nope")):
        failed = cli(*args)  # --json: the error document on stdout too, whichever option failed to parse
        assert failed.exit_code == 2
        if "--json" in args:
            assert json.loads(failed.stdout)["error"]["type"] == "UsageError", args
            assert json.loads(failed.stdout)["error"]["message"] == failed.stderr.split("error: ")[1].split(" — ")[0]
        else:
            assert failed.stdout == ""


def test_lock_status_and_release_of_a_stale_lock(project: Path, cli) -> None:
    (project / ".golive").mkdir()
    (project / ".golive" / "lock").write_text(json.dumps(
        {"user": "ops", "host": __import__("socket").gethostname(), "pid": 999999, "command": "golive cutover",
         "since": "2026-11-24T01:00:00.000+00:00"}))
    status = cli("lock", "status")
    assert status.lines[0].startswith("lock: stale — ops@")
    assert status.lines[0].endswith("pid 999999 running `golive cutover` since 2026-11-24T01:00:00.000+00:00")
    released = cli("lock", "release")
    assert released.exit_code == 0 and released.stdout.startswith("lock: released (was held by ops@")
    assert cli("lock", "status").stdout == "lock: free\n"


def test_newer_journal_schema_is_refused(project: Path, cli) -> None:
    applied_run(project)
    db = sqlite3.connect(project / ".golive" / "journal.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    result = cli("history")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: journal {project}/.golive/journal.db has schema v99, newer than this golive understands (v1)"
        " — upgrade golive (pip install -U golive) to read it\n"))


def test_corrupt_journal_row_is_named(project: Path, cli) -> None:
    run_id = applied_run(project)
    db = sqlite3.connect(project / ".golive" / "journal.db")
    db.execute("UPDATE steps SET record = '{broken' WHERE seq = 2")
    db.commit()
    db.close()
    result = cli("rollback", "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: journal {project}/.golive/journal.db: steps row run={run_id} seq=2 has a corrupt record (")
    assert "Traceback" not in result.stderr


def test_not_a_database_is_a_clear_error(project: Path, cli) -> None:
    (project / ".golive").mkdir()
    (project / ".golive" / "journal.db").write_bytes(b"this is not sqlite at all" * 100)
    result = cli("history")
    assert result.exit_code == 2
    assert result.stderr == (f"error: journal {project}/.golive/journal.db is unreadable: file is not a database"
                             " — move it aside (history is lost) or restore it from a backup\n")


def test_verbose_shows_a_traceback_only_then(project: Path, cli) -> None:
    quiet = cli("history", "nope")
    loud = cli("-v", "history", "nope")
    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in loud.stderr


def test_a_sandbox_on_a_taken_port_is_one_line(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("LINODE_TOKEN", "tok-sandbox-1")
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        api = cli("sandbox", "linode", "--port", str(tcp.getsockname()[1]))
        assert (api.exit_code, api.stderr) == (2, f"error: cannot serve the Linode emulator on 127.0.0.1:"
                                                  f"{tcp.getsockname()[1]}: Address already in use — pick another"
                                                  " --port (one nothing listens on)\n")
        dns = cli("sandbox", "dns", "--port", str(udp.getsockname()[1]))
        assert (dns.exit_code, dns.stderr) == (2, f"error: cannot serve DNS on 127.0.0.1:{udp.getsockname()[1]}: Address"
                                                  " already in use — pick another --port (one nothing listens on)\n")
