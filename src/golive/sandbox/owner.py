"""Sandbox servers that detach from their owner (pg_ctl, apache2 -k start) run on after it dies — a test
run killed by a timeout, a sandbox ended with SIGKILL — holding loopback ports and /tmp folders. A watcher
in its own session runs the server's stop command once the owner is gone."""

from __future__ import annotations

import os
import shlex
import subprocess

__all__ = ["Watcher"]


class Watcher:
    def __init__(self, *on_death: list[str]) -> None:
        """Run each command of ``on_death`` (in order, failures ignored) once this process has ended."""
        stops = "; ".join(f"{shlex.join(command)} >/dev/null 2>&1" for command in on_death)
        script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {stops}"
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def cancel(self) -> None:
        """The owner stopped the server itself: nothing left to watch."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
