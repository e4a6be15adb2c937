"""golive as scripts run it: the global flags in either order, and `--json` shapes a script reads without
parsing prose (an empty rollback's result, `status`'s typed `state`)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from golive.cli.application import App
from golive.sandbox.linode import LinodeEmulator
from golive.steps.files import WriteFile
from golive.sync import state
from tests.dns import conftest as dns_fixtures
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, TOKEN

emulator = dns_fixtures.emulator  # (the fixture: the Linode emulator with example.org)


def applied_run(project: Path, name: str = "f.txt") -> str:
    outcome = App(project / "golive.toml").runner().run("test", [WriteFile(path=str(project / name), content="1\n")])
    assert outcome.run_id is not None
    return outcome.run_id


# -- the global flags: before the command or after it ------------------------------------------------------------

@pytest.mark.parametrize("command", [["status"], ["history"], ["rollback", "--dry-run"], ["rollback", "--yes"]])
def test_json_before_the_command_is_the_same_as_after_it(project: Path, cli, command: list[str]) -> None:
    """`golive --json status` was "No such option: --json" (exit 2); only `golive status --json` worked."""
    run_id = applied_run(project)
    before = cli("--json", *command)
    assert (before.exit_code, before.stderr) == (0, "")
    assert json.loads(before.lines[-1])["ok"] is True
    if command == ["rollback", "--yes"]:  # (it undid the run: the same command after it has nothing left)
        assert json.loads(before.lines[-1])["rolled_back"] == [run_id]
        applied_run(project)
        assert json.loads(cli(*command, "--json").lines[-1])["ok"] is True
    else:
        assert before.stdout == cli(*command, "--json").stdout


def test_yes_and_dry_run_before_the_command(project: Path, cli) -> None:
    run_id = applied_run(project)
    dry = cli("--dry-run", "rollback")
    assert (dry.exit_code, dry.lines[0]) == (0, f"Plan: rollback of run {run_id} (test) — 1 step(s), 1 change(s)")
    assert (project / "f.txt").exists()
    done = cli("-y", "--json", "rollback")
    assert (done.exit_code, json.loads(done.lines[-1])["rolled_back"]) == (0, [run_id])
    assert not (project / "f.txt").exists()


def test_verbose_after_the_command_is_the_same_as_before_it(project: Path, cli) -> None:
    """`golive status -v` was "No such option: -v": -v is the root's, and went only before the command."""
    assert cli("status", "-v").stdout == cli("-v", "status").stdout == cli("status").stdout
    (project / "golive.toml").write_text("[project\n")
    after, before = cli("status", "-v"), cli("-v", "status")
    assert after.exit_code == before.exit_code == 2
    assert after.stderr == before.stderr


def test_sync_dry_run_takes_json_in_either_order(project: Path, cli) -> None:
    """sync is a group with options on its callback: the moved flag reaches it as if written after `sync`
    (here its JSON error document: no mapping file)."""
    (project / "golive.toml").write_text('[project]\nname = "t"\n[target]\nurl = "postgresql://localhost:1/none"\n')
    before, after = cli("--json", "sync", "--dry-run"), cli("sync", "--dry-run", "--json")
    assert before.exit_code == after.exit_code == 2
    assert (before.stdout, before.stderr) == (after.stdout, after.stderr)
    assert json.loads(before.stdout)["error"]["message"] == f"no mapping file at {project}/mapping.toml"


def test_a_flag_after_a_double_dash_is_not_moved(project: Path, cli) -> None:
    shown = cli("--json", "history", "--", "--yes")
    assert shown.exit_code == 2
    assert json.loads(shown.stdout)["error"]["message"] == "no run --yes in the journal"


# -- rollback's result when there is nothing to roll back -----------------------------------------------------

def test_rollback_with_nothing_to_undo_says_so_with_the_same_list_either_way(project: Path, cli) -> None:
    """`rollback --json` said `"rolled_back": null` and `rollback --through RUN --json` said `[]`; then each lacked
    keys the other had (`target`; `targets` and `rollbacks`), which the README promises for both."""
    run_id = applied_run(project)
    done = json.loads(cli("rollback", "--yes", "--json").lines[-1])
    assert (done["rolled_back"], done["target"]) == ([run_id], run_id)
    nothing = {"event": "result", "ok": True, "rolled_back": [], "target": None, "targets": [], "rollbacks": [],
               "steps": [], "notices": [], "run": None, "status": "nothing to do"}
    assert json.loads(cli("rollback", "--yes", "--json").stdout) == nothing
    assert json.loads(cli("rollback", "--through", run_id, "--yes", "--json").stdout) == nothing


def test_rollback_through_names_the_runs_it_rolled_back(project: Path, cli) -> None:
    first, second = applied_run(project, "a.txt"), applied_run(project, "b.txt")
    done = json.loads(cli("rollback", "--through", first, "--yes", "--json").lines[-1])
    assert done["rolled_back"] == done["targets"] == [second, first]


# -- status --json: typed values beside the display strings ---------------------------------------------------

def sync_down(config: object) -> dict[str, str]:
    raise ConnectionRefusedError("connection refused")


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _site() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _status_config(project: Path, port: int, more: str = "") -> None:
    (project / "upstream.conf").write_text("Define GOLIVE_UPSTREAM http://127.0.0.1:18002\n")
    (project / "golive.toml").write_text(f"""\
[project]
name = "status-state"

[source]
url = "sqlite:///old.db"

[source.freeze]
method = "file"
flag_file = "MAINTENANCE"

[containers]
docker_url = "unix://{project}/no-docker.sock"
image = "app:green"
blue = {{ name = "st-blue", host_port = 18001 }}
green = {{ name = "st-green", host_port = 18002 }}

[proxy]
upstream_file = "{project}/upstream.conf"
public_url = "http://127.0.0.1:{port}"
{more}""")


def test_status_json_has_each_parts_state_as_values(project: Path, cli, emulator: LinodeEmulator, pg_cluster,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`parts` are display strings ("idle": "blue (none)", "records": "3 (1 new, 2 old)"): a script had to parse
    prose to learn the live colour. `state` has them as values, from each part's own answer (the Linode API's,
    the target database's, …); `parts` stays as it was."""
    def one_moved(state: dict[str, Any]) -> None:  # www's A record already points at the new server
        next(r for r in state["domains"][0]["records"] if (r["name"], r["type"]) == ("www", "A"))["target"] = NEW

    emulator.edit(one_moved)
    database = f"status_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(database)
    with psycopg.connect(pg_cluster.url(database), autocommit=True) as conn:
        state.ensure(conn)
        state.save(conn, "auth_user", None, "full", {1, 2, 3})
        state.save(conn, "directory_entry", "2026-05-01 02:00:00", "incremental", set(range(1, 1201)))
        synced = conn.execute("SELECT max(synced_at) FROM golive.sync_state").fetchone()[0]
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", TOKEN)
    (project / "MAINTENANCE").write_text("frozen\n")
    with _site() as port:
        _status_config(project, port, f"""
[target]
url = "{pg_cluster.url(database)}"

[linode]
token = "env:GOLIVE_TEST_LINODE_TOKEN"
api_url = "{emulator.url}"

[dns]
domain = "example.org"
records = [{{ name = "", type = "A" }}, {{ name = "www", type = "A" }}, {{ name = "www", type = "AAAA" }}]
old_target = "{OLD}"
new_target = "{NEW}"
old_target_v6 = "{OLD6}"
new_target_v6 = "{NEW6}"
""")
        doc = json.loads(cli("status", "--json").stdout)
    assert doc["parts"]["swap"]["live"] == "green" and doc["parts"]["freeze"] == {"frozen": "on", "method": "file"}
    assert doc["parts"]["dns"] == {"records": "3 (1 new, 2 old)", "half switched": "finish with `golive dns switch`"
                                   " (or `--to old`), or undo with `golive rollback`"}
    last = synced.astimezone().isoformat(timespec="seconds")
    assert doc["parts"]["sync"] == {"last": last, "mode": "incremental", "tables": "2", "synced_rows": "1203",
                                    "backup": "none"}
    assert doc["state"] == {
        "dns": {"ok": False, "records": 3, "new": 1, "old": 2, "elsewhere": 0, "points_to": "mixed",  # (half switched)
                "address": None, "address_v6": None},
        "swap": {"ok": True, "live": "green", "upstream": "http://127.0.0.1:18002", "idle": "blue",
                 "idle_container": "unknown", "idle_image": None, "live_container": "unknown", "live_image": None,
                 "proxy_answers": True, "health_status": 200, "serving_as_configured": True},
        "freeze": {"ok": True, "frozen": True, "method": "file"},
        "sync": {"ok": True, "last_sync": last, "mode": "incremental", "tables": 2, "synced_rows": 1203,
                 "writes": "open", "backup": None},
    }


def test_status_json_state_of_a_part_that_did_not_answer(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from golive.cli import status_cmd

    monkeypatch.setattr(status_cmd, "STATUS_PARTS", {"sync": f"{__name__}:sync_down"})
    with _site() as port:
        _status_config(project, port)
        doc = json.loads(cli("status", "--json").stdout)
    assert doc["state"] == {"sync": {"ok": False, "error": "connection refused"}}


@pytest.mark.parametrize(("args", "message"), [
    (["swap", "--to", "purple"], "Invalid value for '--to': must be green or blue, not 'purple'"),
    (["swap", "--image"], "Invalid value for '--image': needs a value, not '--json'"),  # (the image forgotten)
    (["sync", "--tables"], "Invalid value for '--tables': needs a value, not '--json'"),
    (["rollback", "--through"], "Invalid value for '--through': needs a value, not '--json'"),
    # (a script's unset variable: `--run "$RUN"` rolled back the latest run, whichever that was)
    (["rollback", "--run", ""], "Invalid value for '--run': needs a value, not ''"),
    (["rollback", "--through", " "], "Invalid value for '--through': needs a value, not ' '"),
    (["dns", "plan", "--to"], "Invalid value for '--to': must be new or old, not '--json'"),
])
def test_a_bad_option_value_is_a_usage_error_a_script_reads_as_json(project: Path, cli, args: list[str],
                                                                    message: str) -> None:
    """`swap --to purple --json` printed nothing on stdout; `swap --image --json` took --json for the image and
    asked Docker for it (exit 1)."""
    said = cli(*args, "--json")
    command = " ".join(args[:args.index(next(a for a in args if a.startswith("-")))])
    assert said.exit_code == 2
    assert json.loads(said.stdout) == {"ok": False, "error": {
        "type": "UsageError", "message": message, "hint": f"`golive {command} --help` lists what it takes"},
        "exit_code": 2}


def test_a_rolled_back_run_keeps_the_time_it_took_and_the_rollback_has_its_own(project: Path, cli) -> None:
    """A 02:00 switch rolled back at 04:00 showed TOOK 120.0m in `golive history`, and its report's `finished:` was
    the rollback's: the rollback wrote the original run's end time again."""
    from golive.core.journal import Journal

    run_id = applied_run(project)
    journal = Journal(project / ".golive" / "journal.db")
    ended = journal.run(run_id).finished_at
    time.sleep(1.1)
    assert cli("rollback", "--yes").exit_code == 0
    after = journal.run(run_id)
    assert (after.status, after.finished_at, after.error) == ("rolled_back", ended, None)
    [rollback] = [r for r in journal.runs() if r.command == "rollback"]
    assert rollback.finished_at > ended
    took = {line.split()[0]: line.split()[4] for line in cli("history").lines[1:]}
    assert took[run_id].endswith("s") and float(took[run_id][:-1]) < 1.0, took


@pytest.mark.parametrize("tables", [",", " , "])
def test_tables_naming_no_table_is_a_usage_error_not_every_table(project: Path, cli, tables: str) -> None:
    """`sync --tables ,` (a script's list, empty) synced every table."""
    said = cli("sync", "--tables", tables, "--dry-run")
    assert (said.exit_code, said.stderr) == (2, f"error: --tables {tables!r} names no table — name one or more tables,"
                                                " comma-separated, or leave --tables out to sync every table\n")


def test_a_config_named_with_c_is_named_in_every_command_golive_tells_the_operator_to_run(project: Path, cli) -> None:
    """Hints, `by hand:` lines and status named plain `golive rollback`: an operator with a staging and a production
    config who pasted one rolled back whatever ./golive.toml was (or got "no config file")."""
    (project / "prod site").mkdir()
    config = project / "prod site" / "golive.toml"
    (project / "golive.toml").rename(config)
    run_id = applied_run_at(config)
    shown = cli("-c", str(config), "status")
    assert f"rollback:  would undo 1 step(s) of run {run_id} (`golive -c '{config}' rollback`)" in shown.lines, shown
    missing = cli("-c", str(config), "history", "nope")
    assert missing.stderr == f"error: no run nope in the journal — `golive -c '{config}' history` lists the runs\n"
    doc = json.loads(cli("--config", str(config), "history", "nope", "--json").stdout)
    assert doc["error"]["hint"] == f"`golive -c '{config}' history` lists the runs"
    # from GOLIVE_CONFIG it is still in the environment: named nowhere; one named already is not named twice
    assert cli("history", "nope", env={"GOLIVE_CONFIG": str(config)}).stderr == \
        "error: no run nope in the journal — `golive history` lists the runs\n"
    assert App(config, named=True).commands("run `golive -c x rollback` or `golive status`") == \
        f"run `golive -c x rollback` or `golive -c '{config}' status`"


def applied_run_at(config: Path) -> str:
    outcome = App(config).runner().run("test", [WriteFile(path=str(config.parent / "f.txt"), content="1\n")])
    assert outcome.run_id is not None
    return outcome.run_id


def test_json_without_yes_is_refused_saying_json_does_not_ask(project: Path, cli) -> None:
    """On a terminal, `--json` without `--yes` said "there is no terminal to ask"."""
    applied_run(project)
    refused = cli("rollback", "--json")
    assert refused.exit_code == 2
    assert json.loads(refused.stdout)["error"]["message"].endswith("needs confirmation, and --json does not ask")
