"""Shared fixtures. CLI tests go through the real CLI (CliRunner, NO_COLOR=1) and assert exact lines.

Tests that need a real service call :func:`require_real`: without the service they skip, except
under ``GOLIVE_REQUIRE_REAL=1`` (CI), where they fail — a missing service is never hidden.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golive.cli import app

# A suite started as a background job of a non-interactive shell (`make test &`, a CI runner) inherits SIGINT
# ignored, and so would every golive a test starts: Ctrl-C and SIGINT tests would find it deaf. golive run by an
# operator is not started that way; the tests' children get Python's default, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

MINIMAL = """\
[project]
name = "test"
state_dir = ".golive"
"""


def require_real(service: str, available: bool, why: str = "") -> None:
    """Skip when ``service`` is missing; fail instead under GOLIVE_REQUIRE_REAL=1."""
    if available:
        return
    message = f"{service} is not available{': ' + why if why else ''} (make test installs it)"
    if os.environ.get("GOLIVE_REQUIRE_REAL") == "1":
        pytest.fail(f"GOLIVE_REQUIRE_REAL=1 and {message}")
    pytest.skip(message)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a minimal, private golive.toml; the cwd for the test."""
    config = tmp_path / "golive.toml"
    config.write_text(MINIMAL)
    config.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOLIVE_CONFIG", raising=False)
    monkeypatch.delenv("GOLIVE_FAULT", raising=False)
    return tmp_path


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __repr__(self) -> str:
        return f"<Result {self.exit_code} stdout={self.stdout!r} stderr={self.stderr!r}>"


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run golive in-process through the real CLI; returns exit code, stdout and stderr."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env={"NO_COLOR": "1", **(env or {})},
                               catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def golive_proc() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run golive as a real subprocess (a separate process: locks, signals, crashes)."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        return subprocess.run([sys.executable, "-m", "golive", *args], cwd=cwd, env=full_env, capture_output=True,
                              text=True, timeout=timeout)

    yield run


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    """A throwaway PostgreSQL cluster for the session (golive.sandbox.postgres); tests make databases in it."""
    from golive.sandbox.postgres import PostgresCluster, find_bin_dir

    require_real("postgresql", find_bin_dir() is not None, "no initdb (apt-get install postgresql)")
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()
