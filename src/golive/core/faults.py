"""Deliberate faults at named points inside steps, for crash tests and rollback drills.

``GOLIVE_FAULT`` holds comma-separated ``WHERE:POINT:ACTION`` triples. WHERE is a step number
(1-based) or a step kind; POINT a checkpoint name a step passes (``before``, ``after`` around every
apply, ``undo`` before every undo, plus any the step names itself, e.g. ``mid``) or ``*``; ACTION is ``raise`` (the step fails),
``kill`` (the process SIGKILLs itself, as a crash would), ``pause`` (write the marker file named
by ``GOLIVE_FAULT_MARKER`` and wait to be killed), or ``hold`` (write the marker and go on once it is
removed: a test breaks the output or hangs up the terminal in between).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Faults", "InjectedFault"]


class InjectedFault(RuntimeError):
    """Raised at a checkpoint by a ``raise`` fault."""


@dataclass(frozen=True)
class _Rule:
    where: str
    point: str
    action: str


class Faults:
    def __init__(self, spec: str = "") -> None:
        self.rules: list[_Rule] = []
        for item in filter(None, (s.strip() for s in spec.split(","))):
            where, point, action = [*item.split(":"), "", ""][:3]
            if action not in ("raise", "kill", "pause", "hold"):
                raise ValueError(f"GOLIVE_FAULT entry {item!r}: action must be raise, kill, pause or hold")
            self.rules.append(_Rule(where, point, action))

    @classmethod
    def from_env(cls) -> Faults:
        return cls(os.environ.get("GOLIVE_FAULT", ""))

    def add(self, where: str, point: str, action: str) -> None:
        self.rules.append(_Rule(where, point, action))

    def hit(self, seq: int, kind: str, point: str) -> None:
        for rule in self.rules:
            if rule.where not in (str(seq), kind) or rule.point not in (point, "*"):
                continue
            if rule.action == "raise":
                raise InjectedFault(f"injected fault at step {seq} ({kind}) point {point}")
            if rule.action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            marker = os.environ.get("GOLIVE_FAULT_MARKER")
            if marker:
                Path(marker).write_text(f"{seq}:{kind}:{point}\n")
            if rule.action == "hold" and marker:
                while Path(marker).exists():
                    time.sleep(0.02)
                continue
            while True:  # pause: wait to be killed
                time.sleep(3600)
