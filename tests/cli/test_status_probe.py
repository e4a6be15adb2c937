"""`golive status` at 2 a.m. with the site hanging: the swap line's proxy probe is bounded and says it timed out,
and the rest of the line (live colour, upstream, idle colour) is still shown, within seconds. The proxy is a real
socket server on loopback that takes the connection and never answers (or trickles its answer a byte at a time,
which resets httpx's read timeout with every byte); Docker is a socket nobody listens on, or one that hangs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def _server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server: each connection handled by ``handle`` in its own thread."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()


def _silent(conn: socket.socket) -> None:
    with conn:
        time.sleep(30)  # (takes the request, never answers)


def _trickle(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.5)


def _config(project: Path, public_port: int, docker_sock: Path) -> None:
    upstream = project / "upstream.conf"
    upstream.write_text("Define GOLIVE_UPSTREAM http://127.0.0.1:18001\n")
    config = project / "golive.toml"
    config.write_text(f"""\
[project]
name = "gl-h2-status"

[containers]
docker_url = "unix://{docker_sock}"
image = "gl-h2-app:green"

[containers.blue]
name = "gl-h2-blue"
host_port = 18001

[containers.green]
name = "gl-h2-green"
host_port = 18002

[proxy]
upstream_file = "{upstream}"
public_url = "http://127.0.0.1:{public_port}"
""")
    config.chmod(0o600)


@pytest.mark.parametrize("handle", [_silent, _trickle], ids=["silent", "trickle"])
def test_status_bounds_the_proxy_probe_and_shows_the_rest(project: Path, cli, handle) -> None:
    """The silent proxy cost 2 s and the line said nothing of it; the trickling one held the probe past status's
    10 s, and the whole swap line became `error=no answer within 10s`."""
    with _server(handle) as port:
        _config(project, port, project / "no-docker.sock")
        started = time.monotonic()
        shown = cli("status")
        took = time.monotonic() - started
    assert shown.exit_code == 0, shown.stderr
    swap = next(line for line in shown.lines if line.startswith("swap:"))
    assert swap == (f"swap:      live=blue, upstream=http://127.0.0.1:18001, idle=green (unknown: the Docker daemon at"
                    f" unix://{project}/no-docker.sock does not answer (DockerException)),"
                    f" proxy=http://127.0.0.1:{port}/healthz timed out after 2s"), swap
    assert took < 5, took


def test_status_bounds_a_hung_docker_daemon_and_shows_the_rest(project: Path, cli) -> None:
    """A dockerd that takes the connection and never answers: the gateway's ping waits 10 s, status's whole budget
    for a part, and the swap line was lost with it."""
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(project / "hung.sock"))
        hung.listen(8)
        _config(project, 1, project / "hung.sock")  # (port 1: nothing listens, the probe is refused at once)
        started = time.monotonic()
        shown = cli("status")
        took = time.monotonic() - started
    assert shown.exit_code == 0, shown.stderr
    swap = next(line for line in shown.lines if line.startswith("swap:"))
    assert swap == ("swap:      live=blue, upstream=http://127.0.0.1:18001, idle=green (unknown: Docker did not answer"
                    " within 4s), proxy=http://127.0.0.1:1/healthz answers nothing (ConnectError)"), swap
    assert took < 7, took


def test_a_password_in_a_configured_url_is_masked_on_the_human_status_line(project: Path, cli) -> None:
    """`--json` masked it; the line for humans printed `proxy=http://admin:S3cretPW99@…/healthz answers nothing`."""
    _config(project, 1, project / "no-docker.sock")
    config = project / "golive.toml"
    config.write_text(config.read_text().replace("http://127.0.0.1:1", "http://admin:S3cretPW99@127.0.0.1:1"))
    shown = cli("status")
    assert shown.exit_code == 0, shown.stderr
    swap = next(line for line in shown.lines if line.startswith("swap:"))
    assert "S3cretPW99" not in shown.stdout + shown.stderr
    assert swap.endswith(" proxy=http://admin:***@127.0.0.1:1/healthz answers nothing (ConnectError)"), swap


def test_rich_makes_no_emoji_of_what_golive_prints(project: Path, cli) -> None:
    """`--image TSW:ok` printed "TSW🆗 no such image": rich's emoji codes were on for golive's own text."""
    shown = cli("-c", "x:ok:y.toml", "status")
    assert (shown.exit_code, shown.stderr) == (
        2, "error: no config file at x:ok:y.toml — run `golive -c x:ok:y.toml init` to write one, or pass -c PATH\n")


def test_a_table_cell_is_shown_as_written_not_read_as_markup(project: Path, cli) -> None:
    """`history RUN` showed "fix .reload_command": rich took `[proxy]` in a cell for markup and dropped it."""
    from golive.cli.application import App
    from golive.steps.files import WriteFile

    run = App(project / "golive.toml").runner().run("t", [WriteFile(path=str(project / "[proxy].txt"), content="x\n")])
    shown = cli("history", str(run.run_id))
    assert f"write {project}/[proxy].txt" in shown.stdout, shown.stdout
