"""The proxy gateway alone, no services: both upstream formats, the atomic write that keeps the
old file's mode and always moves its mtime, and what a switch runs in each mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from golive.config.models import Proxy
from golive.errors import ConfigError, GoliveError
from golive.swap.proxy import ProxyGateway


def gateway(tmp_path: Path, switch: str, test: str = "true", reload: str = "true") -> ProxyGateway:
    log = tmp_path / "ran"
    proxy = Proxy(switch=switch, upstream_file=tmp_path / "upstream", public_url="http://127.0.0.1:1",
                  test_command=["sh", "-c", f"echo test >> {log}; {test}"],
                  reload_command=["sh", "-c", f"echo reload >> {log}; {reload}"])
    return ProxyGateway(proxy, tmp_path / "upstream")


def ran(tmp_path: Path) -> list[str]:
    log = tmp_path / "ran"
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("switch", ["reload", "map"])
def test_upstream_reads_both_formats_whatever_the_mode(tmp_path: Path, switch: str) -> None:
    proxy = gateway(tmp_path, switch)
    proxy.file.write_text("Define GOLIVE_UPSTREAM http://127.0.0.1:8001\n")
    assert proxy.upstream() == "http://127.0.0.1:8001"
    proxy.file.write_text("# golive\nupstream http://127.0.0.1:8002\n")
    assert proxy.upstream() == "http://127.0.0.1:8002"


def test_lines_and_the_error_naming_the_format(tmp_path: Path) -> None:
    assert gateway(tmp_path, "reload").line("http://x") == "Define GOLIVE_UPSTREAM http://x\n"
    proxy = gateway(tmp_path, "map")
    assert proxy.line("http://x") == "upstream http://x\n"
    proxy.file.write_text("something else\n")
    with pytest.raises(ConfigError) as error:
        proxy.upstream()
    assert str(error.value) == (f"the upstream file {proxy.file} has no `upstream <url>` line"
                                " — write it once by hand: upstream http://127.0.0.1:<blue host_port>")
    proxy.file.unlink()  # (a first swap on a host where nobody wrote it yet)
    with pytest.raises(ConfigError) as error:
        proxy.upstream()
    assert str(error.value) == (f"the upstream file {proxy.file} does not exist ([proxy].upstream_file) — write it once"
                                " by hand: upstream http://127.0.0.1:<blue host_port> — and include it in the Apache"
                                " site (`golive init` prints the vhost snippet)")


def test_write_keeps_mode_and_always_moves_the_mtime(tmp_path: Path) -> None:
    proxy = gateway(tmp_path, "map")
    proxy.file.write_text("upstream http://127.0.0.1:8001\n")
    proxy.file.chmod(0o640)
    old = proxy.file.stat()
    for port in (8002, 8001, 8002):  # faster than any timestamp tick
        proxy.write(f"upstream http://127.0.0.1:{port}\n")
        new = proxy.file.stat()
        assert new.st_mtime_ns != old.st_mtime_ns and new.st_ino != old.st_ino  # a new file, renamed in
        assert new.st_mode & 0o777 == 0o640
        old = new
    assert not list(tmp_path.glob(".upstream.golive-tmp"))


def test_map_switch_tests_then_writes_and_never_reloads(tmp_path: Path) -> None:
    proxy = gateway(tmp_path, "map", reload="false")
    proxy.file.write_text("upstream http://127.0.0.1:8001\n")
    proxy.switch("upstream http://127.0.0.1:8002\n")
    assert (ran(tmp_path), proxy.upstream()) == (["test"], "http://127.0.0.1:8002")


def test_map_switch_with_a_failing_test_writes_nothing(tmp_path: Path) -> None:
    proxy = gateway(tmp_path, "map", test="echo 'Syntax error on line 3'; false")
    proxy.file.write_text("upstream http://127.0.0.1:8001\n")
    before = proxy.file.stat().st_mtime_ns
    with pytest.raises(GoliveError) as error:
        proxy.switch("upstream http://127.0.0.1:8002\n")
    assert error.value.hint == "the upstream file was not changed"
    assert proxy.file.stat().st_mtime_ns == before and proxy.upstream() == "http://127.0.0.1:8001"


def test_reload_switch_writes_tests_reloads(tmp_path: Path) -> None:
    proxy = gateway(tmp_path, "reload")
    proxy.file.write_text("Define GOLIVE_UPSTREAM http://127.0.0.1:8001\n")
    proxy.switch("Define GOLIVE_UPSTREAM http://127.0.0.1:8002\n")
    assert (ran(tmp_path), proxy.upstream()) == (["test", "reload"], "http://127.0.0.1:8002")
    assert os.access(proxy.file, os.R_OK)
