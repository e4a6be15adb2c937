"""The Step: the one shape of every mutating action in golive.

A step is built from JSON-able ``params`` (so it can be rebuilt from the journal in another process,
after a crash) and offers:

- ``plan(ctx)``      -> list of Changes; reads only.
- ``snapshot(ctx)``  -> the state before, enough to put it back; reads only. The runner journals it
                        durably *before* ``apply`` touches anything, so a crash mid-apply can be undone.
- ``apply(ctx, before)`` -> performs the change and returns the undo record (by default ``before``;
                        a step may enrich it, e.g. with the id of a container it created).
- ``undo(ctx, record)``  -> puts the state back. State-based and idempotent: safe after a crash in
                        the middle of ``apply`` and safe to run twice.
- ``check(ctx)``     -> read-only verification that the effect holds; returns problems (empty = ok).
- ``manual_undo(record)`` -> what an operator must do by hand if ``undo`` itself fails.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from golive.core.change import Change
from golive.core.faults import Faults
from golive.errors import GoliveError

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig

__all__ = ["STEP_KINDS", "Gateways", "Step", "StepContext", "build_step", "register_step", "step_class"]

Record = dict[str, Any]


class Step:
    kind: ClassVar[str] = "step"
    # the step kinds a newer run's applied steps of which must be undone before this step's undo (it puts back a
    # state they have changed since), and why, for `rollback --run`'s refusal; --through undoes them in order
    undone_after: ClassVar[tuple[str, ...]] = ()
    undone_after_why: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params

    @property
    def title(self) -> str:
        return self.kind

    def plan(self, ctx: StepContext) -> list[Change]:
        raise NotImplementedError

    def snapshot(self, ctx: StepContext) -> Record:
        return {}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        raise NotImplementedError

    def undo(self, ctx: StepContext, record: Record) -> None:
        raise NotImplementedError

    def check(self, ctx: StepContext) -> list[str]:
        return []

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        """What undoing the step would change, from the changes it made and its undo ``record``
        (shown by `rollback --dry-run` and its prompt): by default each change reversed."""
        return [c.inverse() for c in changes]

    def manual_undo(self, record: Record) -> list[str]:
        return [f"restore by hand what step {self.title} changed (undo record: {record})"]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.title}>"


# kind -> "module:Class"; imported only when a step of that kind is built, so the CLI starts fast.
STEP_KINDS: dict[str, str] = {
    "files.write": "golive.steps.files:WriteFile",
    "files.remove": "golive.steps.files:RemoveFile",
    "dns.switch": "golive.dns.steps:Switch",
    "dns.lower_ttl": "golive.dns.steps:LowerTtl",
    "swap.swap": "golive.swap.steps:Swap",
    "swap.finalize": "golive.swap.steps:Finalize",
    "swap.prepare": "golive.swap.steps:Prepare",
    "freeze.set": "golive.freeze.steps:Freeze",
    "sync.run": "golive.sync.steps:Sync",
}


def register_step(kind: str, target: str) -> None:
    STEP_KINDS[kind] = target


def build_step(kind: str, params: dict[str, Any]) -> Step:
    step: Step = step_class(kind)(**params)
    return step


def step_class(kind: str) -> type[Step]:
    """The class of a step ``kind`` (its module imported), without making a step."""
    from golive.errors import JournalError

    target = STEP_KINDS.get(kind)
    if target is None:
        raise JournalError(
            f"the journal names a step kind {kind!r} this golive does not know",
            hint="run the golive version that wrote the journal",
        )
    module, _, name = target.partition(":")
    cls: type[Step] = getattr(importlib.import_module(module), name)
    return cls


# name -> "module:factory"; a factory takes the config and returns the gateway object.
GATEWAY_FACTORIES: dict[str, str] = {
    "linode": "golive.dns.gateway:from_config",
    "docker": "golive.swap.docker_gateway:from_config",
    "proxy": "golive.swap.proxy:from_config",
}


class Gateways:
    """Lazily built side-effect gateways (Linode, Docker, PostgreSQL, Apache…).

    Tests pass fakes through ``overrides``; integration tests let the real factories run.
    """

    def __init__(self, config: GoliveConfig | None, overrides: dict[str, Any] | None = None) -> None:
        self._config = config
        self._built: dict[str, Any] = dict(overrides or {})
        self._failed: dict[str, GoliveError] = {}

    def get(self, name: str) -> Any:
        """The gateway, built once. One that could not be built (a daemon that does not answer) is not tried
        again in the same command: a hung dockerd costs its timeout once, not at the plan and again at the undo
        (a rollback's undo points Apache back only after it)."""
        if name in self._failed:
            raise self._failed[name]
        if name not in self._built:
            target = GATEWAY_FACTORIES.get(name)
            if target is None:
                raise KeyError(f"no gateway named {name!r}")
            module, _, fn = target.partition(":")
            try:
                self._built[name] = getattr(importlib.import_module(module), fn)(self._config)
            except GoliveError as exc:
                self._failed[name] = exc
                raise
        return self._built[name]

    def close(self) -> None:
        for gateway in self._built.values():
            closer = getattr(gateway, "close", None)
            if callable(closer):
                closer()


@dataclass
class StepContext:
    """What a step may use: the config, gateways, the state dir, options, logging, fault points."""

    state_dir: Path
    config: GoliveConfig | None = None
    gateways: Gateways = field(default_factory=lambda: Gateways(None))
    options: dict[str, Any] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    log_sink: Callable[[str, str], None] | None = None
    seq: int = 0
    kind: str = ""

    def log(self, phase: str, message: str) -> None:
        """A loud log line, prefixed by its phase (``plan``, ``apply``, ``undo``, ``check``)."""
        if self.log_sink is not None:
            self.log_sink(phase, message)

    def notice(self, message: str) -> None:
        """A log line the operator must see even without ``-v`` (where something was kept, what to do)."""
        self.log("notice", message)

    def checkpoint(self, point: str) -> None:
        """A named point inside a step where a drill or crash test may inject a fault."""
        self.faults.hit(self.seq, self.kind, point)
