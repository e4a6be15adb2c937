"""Deliberate faults at named points inside steps, for crash tests and rollback drills.

``GOLIVE_FAULT`` holds comma-separated ``WHERE:POINT:ACTION`` triples. WHERE is a step number
(1-based) or a step kind; POINT a checkpoint name a step passes (``before``, ``after`` around every
apply, ``undo`` before every undo, plus any the step names itself, e.g. ``mid``) or ``*``; ACTION is ``raise`` (the step fails),
``kill`` (the process SIGKILLs itself, as a crash would), ``pause`` (write the marker file named
by ``GOLIVE_FAULT_MARKER`` and wait to be killed), or ``hold`` (write the marker and go on once it is
removed: a test breaks the output or hangs up the terminal in between). An entry of another form is a
usage error (exit 2): a drill with a mistyped fault must not run as if it had none.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from golive.errors import UsageError

__all__ = ["Faults", "InjectedFault"]


ACTIONS = ("raise", "kill", "pause", "hold")


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
            parts = item.split(":")
            if len(parts) != 3 or not all(parts) or parts[2] not in ACTIONS:
                raise UsageError(f"GOLIVE_FAULT entry {item!r} is not WHERE:POINT:ACTION with ACTION one of"
                                 f" {', '.join(ACTIONS)}", hint="e.g. GOLIVE_FAULT=2:after:raise (WHERE a step number"
                                 " or kind, POINT a checkpoint or *), or unset GOLIVE_FAULT")
            self.rules.append(_Rule(*parts))

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
