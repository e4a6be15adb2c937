"""The runner: the only place that sequences side effects.

plan every step -> show -> confirm -> for each step: journal the intent and the state before,
apply, check, journal the undo record. On failure, the step in flight and every applied step are
undone newest first (unless the run was started with ``auto_rollback=False``). ``rollback`` undoes
the applied steps of the most recent run that still has any; ``resume`` finishes a run that was
interrupted or crashed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from golive.core.change import Change
from golive.core.interrupts import finishing, interrupts, lost, stepping
from golive.core.interrupts import shielded as _shielded
from golive.core.journal import UNDOABLE, Journal, RunRow, StepRow, now_iso
from golive.core.step import Step, StepContext, build_step
from golive.errors import ConfigError, GoliveError, Interrupted, JournalError, StepFailed, UndoFailed, first_line
from golive.secrets import REDACTOR, redact

__all__ = ["UNDONE_FIRST", "NothingChanged", "Planned", "RunOutcome", "Runner"]

Event = dict[str, Any]
View = Callable[[Event], None]
Confirm = Callable[[list["Planned"]], None]
# ctx.options key, while a rollback is planned: the undos planned ahead of the step's (list[Planned], in order)
UNDONE_FIRST = "undone_first"


@dataclass
class Planned:
    seq: int
    step: Step
    changes: list[Change]
    note: str = ""
    record: dict[str, Any] | None = None  # (a planned undo: the step's undo record)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.step.kind, "title": self.step.title, "note": self.note,
                "changes": [c.data for c in self.changes]}


@dataclass
class RunOutcome:
    run_id: str | None
    status: str
    planned: list[Planned] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "status": self.status, "steps": [p.as_dict() for p in self.planned]}


class NothingChanged(ConfigError):
    """An undo met a configuration error (a bad token) before it changed anything: the step stays as it was, not
    undo_failed, and no by-hand lines (exit 2, as the same error anywhere else; a subclass may say otherwise — the
    Linode API not reached, exit 1)."""


class _Stopped(KeyboardInterrupt):
    """The operator's output went away: the run stops at this step boundary, as if interrupted here."""


def _stop_if_gone() -> None:
    if lost():
        raise _Stopped


def _manual(step: Step, row: StepRow) -> list[str]:
    """The step's by-hand undo, or — its journaled record unreadable to it (edited, damaged) — what is known."""
    try:
        return step.manual_undo(row.undo_record)
    except (KeyError, TypeError, AttributeError):
        return [f"undo step {row.seq} ({step.title}) of run {row.run_id} by hand: its journaled record cannot be read"
                f" back (`golive history {row.run_id} --json` shows it)"]


def _not_if_gone(command: str) -> None:
    """The output went away while the plan was shown: nobody saw it, so nothing starts."""
    if lost():
        raise Interrupted(f"{command} stopped before its run started ({lost()}); nothing was changed",
                          hint="run the command again")


class Runner:
    def __init__(self, journal: Journal, ctx: StepContext, view: View | None = None) -> None:
        self.journal = journal
        self.ctx = ctx
        self.view = view or (lambda event: None)
        self._run_id: str | None = None
        self._again = "golive rollback"  # the command that finishes an undo left half done (named in its hints)
        self._older = (0, 0)  # the steps and runs a `rollback --through` undoes after the run being undone
        ctx.log_sink = self._log

    # -- events ----------------------------------------------------------------------------------
    def _emit(self, kind: str, seq: int | None = None, **data: Any) -> None:
        event: Event = {"event": kind, "ts": now_iso(), "run": self._run_id, "seq": seq, **data}
        if self._run_id is not None:
            with _shielded():
                self.journal.event(self._run_id, kind, seq=seq, phase=data.get("phase"),
                                   message=data.get("message"), data=data, ts=event["ts"])
        self.view(redact(event))  # type: ignore[arg-type]

    def _journal_manual(self, run_id: str, manual: list[str]) -> None:
        """A failed undo's `by hand:` lines, kept with the run (`history`, `report`): printed once on stderr, they
        were lost with the terminal — at 2 a.m., often the one that dropped."""
        for line in manual:
            self.journal.event(run_id, "log", seq=self.ctx.seq or None, phase="manual", message=REDACTOR(line))

    def _log(self, phase: str, message: str) -> None:
        self._emit("log", self.ctx.seq or None, phase=phase, message=REDACTOR(message))

    # -- planning --------------------------------------------------------------------------------
    def plan(self, steps: list[Step]) -> list[Planned]:
        planned = []
        for seq, step in enumerate(steps, start=1):
            self.ctx.seq, self.ctx.kind = seq, step.kind
            planned.append(Planned(seq, step, step.plan(self.ctx)))
        return planned

    # -- running ---------------------------------------------------------------------------------
    def run(self, command: str, steps: list[Step], *, args: dict[str, Any] | None = None,
            confirm: Confirm | None = None, auto_rollback: bool = True) -> RunOutcome:
        planned = self.plan(steps)
        if planned and all(p.changes and all(c.action == "noop" for c in p.changes) for p in planned):
            # everything is as asked already: no run, so a later `golive rollback` is not spent on an empty one
            return RunOutcome(None, "nothing to do", planned)
        if confirm is not None:
            confirm(planned)
        _not_if_gone(command)
        with _shielded():
            self._run_id = self.journal.start_run(command, args or {},
                                                  [(p.step.kind, p.step.title, p.step.params) for p in planned])
            for p in planned:
                self.journal.step_planned(self._run_id, p.seq, [c.data for c in p.changes])
        self._emit("run.start", command=command, steps=len(planned))
        return self._execute(planned, auto_rollback)

    def resume(self, run: RunRow, *, auto_rollback: bool = True) -> RunOutcome:
        rows = self.journal.steps(run.id)
        if any(r.status in ("undoing", "undone", "undo_failed") for r in rows):
            raise GoliveError(f"run {run.id} was rolled back (in part or whole) and cannot be resumed",
                              hint="start a new run")
        self._run_id = run.id
        self.journal.claim_run(run.id)
        self._emit("run.resume", command=run.command)
        todo: list[Planned] = []
        for row in rows:
            step = build_step(row.kind, row.params)
            if row.status == "applied":
                self._emit("step.skip", row.seq, title=row.title, message="already applied")
                continue
            if row.before is not None:  # crashed or failed inside apply: put it back, then redo
                self._undo_one(row, step)
            self.ctx.seq, self.ctx.kind = row.seq, step.kind
            todo.append(Planned(row.seq, step, step.plan(self.ctx)))
        return self._execute(todo, auto_rollback)

    def _execute(self, planned: list[Planned], auto_rollback: bool) -> RunOutcome:
        with interrupts():
            return self._execute_all(planned, auto_rollback)

    def _execute_all(self, planned: list[Planned], auto_rollback: bool) -> RunOutcome:
        assert self._run_id is not None
        run_id = self._run_id
        total = len(self.journal.steps(run_id))
        for p in planned:
            try:
                _stop_if_gone()
                self._apply_one(p, total)
            except KeyboardInterrupt as exc:
                where = "before" if isinstance(exc, _Stopped) else "during"
                why = f" ({lost()})" if lost() else ""
                with _shielded():
                    self.journal.finish_run(run_id, "interrupted", f"interrupted {where} step {p.seq}{why}")
                self._emit("run.interrupted", p.seq, title=p.step.title)
                raise Interrupted(
                    f"interrupted {where} step {p.seq} ({p.step.title}) of run {run_id}{why}; the journal is"
                    " consistent",
                    hint="undo what was applied with `golive rollback` (`golive status` shows the run), then run the"
                         " command again",
                ) from None
            except Exception as exc:
                return self._fail(p, exc, auto_rollback)
        with _shielded():
            self.journal.finish_run(run_id, "succeeded")
        self._emit("run.done", status="succeeded")
        return RunOutcome(run_id, "succeeded", planned)

    def _apply_one(self, p: Planned, total: int) -> None:
        run_id, seq, step = self._run_id or "", p.seq, p.step
        self.ctx.seq, self.ctx.kind = seq, step.kind
        self._emit("step.start", seq, title=step.title, total=total,
                   changes=[str(c) for c in p.changes])
        started = time.monotonic()
        with stepping():  # (the terminal hanging up lets the step finish: the run stops before the next one)
            before = step.snapshot(self.ctx)
            with _shielded():
                self.journal.step_intent(run_id, seq, before)  # durable before any side effect
            self.ctx.checkpoint("before")
            record = step.apply(self.ctx, before)
            self.ctx.checkpoint("after")
            with _shielded():
                self.journal.step_applied(run_id, seq, record)
            problems = step.check(self.ctx)
        if problems:
            raise StepFailed(step.title, "check after apply: " + "; ".join(problems))
        self._emit("step.done", seq, title=step.title, seconds=round(time.monotonic() - started, 3))

    def _fail(self, p: Planned, exc: Exception, auto_rollback: bool) -> RunOutcome:
        run_id = self._run_id or ""
        cause = exc.cause if isinstance(exc, StepFailed) else exc
        reason = REDACTOR(cause) if isinstance(cause, str) else first_line(cause)
        details = [REDACTOR(d) for d in exc.details] if isinstance(exc, GoliveError) else []
        row = next(r for r in self.journal.steps(run_id) if r.seq == p.seq)
        with _shielded():
            if row.before is None:
                self.journal.step_status(run_id, p.seq, "failed", reason)
            else:
                self.journal.step_error(run_id, p.seq, reason)
        self._emit("step.failed", p.seq, title=p.step.title, error=reason, **({"details": details} if details else {}))
        for line in details:  # (each thing at fault, kept with the run: `history`, `report`)
            self._log("detail", line)
        if not auto_rollback:
            with _shielded():
                self.journal.finish_run(run_id, "failed", reason)
            raise StepFailed(p.step.title, reason, details=details,
                             hint=f"nothing was undone (--no-rollback); undo with `golive rollback` (run {run_id})")
        try:
            with finishing():
                undone = self._undo_run(run_id)
        except KeyboardInterrupt:  # (Ctrl-C or SIGTERM while the failed run was being undone)
            with _shielded():
                self.journal.finish_run(run_id, "interrupted", f"step {p.step.title} failed ({reason}); its undo was"
                                        " interrupted")
            self._emit("run.interrupted", p.seq, title=p.step.title)
            raise Interrupted(f"step {p.seq} ({p.step.title}) of run {run_id} failed ({reason}) and undoing the run was"
                              " interrupted; the journal is consistent",
                              hint="`golive rollback` finishes the undo") from None
        except NothingChanged as stopped:
            with _shielded():
                self.journal.finish_run(run_id, "failed", reason)
            self._emit("run.done", status="failed")
            raise type(stopped)(f"step {p.step.title} failed ({reason}) and {stopped.message}", hint=stopped.hint) \
                from None
        except UndoFailed as undo_exc:
            with _shielded():
                self._journal_manual(run_id, undo_exc.manual)
                self.journal.finish_run(run_id, "partially_rolled_back", reason)
            self._emit("run.done", status="partially_rolled_back")
            raise UndoFailed(f"step {p.step.title} failed ({reason}) and {undo_exc.message}",
                             manual=undo_exc.manual, hint=undo_exc.hint) from None
        with _shielded():
            self.journal.finish_run(run_id, "rolled_back", reason)
        self._emit("run.done", status="rolled_back")
        raise StepFailed(p.step.title, reason, details=details,
                         hint=f"rolled back {undone} step(s); the system is as it was before run {run_id}")

    # -- undoing ---------------------------------------------------------------------------------
    def undoable(self, run_id: str, only: set[int] | None = None) -> list[StepRow]:
        rows = [r for r in self.journal.steps(run_id) if r.status in UNDOABLE or r.status == "failed"]
        return [r for r in reversed(rows) if (r.before is not None or r.record is not None)
                and (only is None or r.seq in only)]

    def rollback_plan(self, run: RunRow, only: set[int] | None = None, *,
                      first: list[Planned] | None = None) -> list[Planned]:
        """The undo of each of the run's steps, newest first. ``first``: the undos the same rollback does before
        this run's (`rollback --through`: the newer runs'). Nothing is undone while planning, so a step whose
        plan reads live state finds those undos in ``ctx.options[UNDONE_FIRST]`` — every undo planned ahead of
        it, oldest last — and plans from the state they leave."""
        planned: list[Planned] = []
        try:
            for row in self.undoable(run.id, only):
                step = build_step(row.kind, row.params)
                self.ctx.seq, self.ctx.kind = row.seq, step.kind
                self.ctx.options[UNDONE_FIRST] = [*(first or []), *planned]
                try:
                    changes = step.undo_plan(self.ctx, [Change.from_data(c) for c in row.changes or []],
                                             row.undo_record)
                except (KeyError, TypeError) as exc:  # (a record without what the step wrote into it: edited)
                    raise JournalError(f"journal: run {run.id} step {row.seq} ({step.title}): its record cannot be"
                                       f" read back ({type(exc).__name__}: {first_line(exc)}); nothing was undone",
                                       hint=f"`golive history {run.id}` shows the step; the journal was edited or"
                                            " damaged: undo that step by hand, or put the journal back") from None
                planned.append(Planned(row.seq, step, changes, note=row.status, record=row.undo_record))
        finally:
            self.ctx.options.pop(UNDONE_FIRST, None)  # (the undos themselves read the state as it is)
        return planned

    def rollback(self, run: RunRow, *, confirm: Confirm | None = None, only: set[int] | None = None,
                 again: str = "golive rollback", under_way: bool = False, older: tuple[int, int] = (0, 0)) -> RunOutcome:
        """Undo the run's applied steps newest first (``only``: just those step numbers). ``again``: the command
        that finishes it if it is interrupted (its options too: a plain rollback would finish a data rollback
        without restoring the data). ``under_way``: this run is part of a rollback that has already undone others
        (`rollback --through`, inside ``finishing``): the output gone since does not stop it before this run either,
        as it would not stop one undo in the middle of a run. ``older``: the steps and runs that rollback undoes after
        this one (what a failure here leaves to ``again`` besides this run's older steps)."""
        planned = self.rollback_plan(run, only)
        if confirm is not None:
            confirm(planned)
        if not under_way:
            _not_if_gone("rollback")
        self._again, self._older = again, older
        with _shielded():
            self._run_id = self.journal.start_run("rollback", {"target": run.id, "again": again}, [], parent=run.id)
        self._emit("run.start", command="rollback", target=run.id, steps=len(planned))
        try:
            with interrupts(), finishing():
                undone = self._undo_run(run.id, only)
        except KeyboardInterrupt:
            why = f" ({lost()})" if lost() else ""
            with _shielded():
                self.journal.finish_run(self._run_id, "interrupted", f"interrupted{why}")
            raise Interrupted(f"rollback of run {run.id} interrupted{why}; the journal is consistent",
                              hint=f"run `{again}` again to finish it") from None
        except NothingChanged as exc:
            with _shielded():
                self.journal.finish_run(self._run_id, "failed", exc.message)
            self._emit("run.done", status="failed")
            raise
        except UndoFailed as exc:
            with _shielded():
                self._journal_manual(self._run_id, exc.manual)
                self.journal.finish_run(self._run_id, "failed", exc.message)
                self.journal.finish_run(run.id, "partially_rolled_back", exc.message, rolled_back=True)
            self._emit("run.done", status="failed")
            raise
        with _shielded():
            if not self.undoable(run.id):
                self.journal.finish_run(run.id, "rolled_back", rolled_back=True)
            self.journal.finish_run(self._run_id, "succeeded")
        self._emit("run.done", status="succeeded", undone=undone)
        return RunOutcome(self._run_id, "succeeded", planned)

    def _undo_run(self, run_id: str, only: set[int] | None = None) -> int:
        rows = self.undoable(run_id, only)
        for done, row in enumerate(rows):  # (the output going away does not stop an undo: ``finishing``)
            step = build_step(row.kind, row.params)
            try:
                self._undo_one(row, step)
            except UndoFailed as exc:
                steps, runs = self._older
                here = len(rows) - done - 1
                left = f"then run `{self._again}` again to undo the {here + steps} older step(s)" + \
                    (f" ({steps} of them in {runs} older run(s))" if runs else "")
                raise UndoFailed(exc.message, manual=exc.manual + ([left] if here + steps else []),
                                 hint=exc.hint) from None
        return len(rows)

    def _undo_one(self, row: StepRow, step: Step) -> None:
        run_id = row.run_id
        self.ctx.seq, self.ctx.kind = row.seq, step.kind
        with _shielded():
            self.journal.step_status(run_id, row.seq, "undoing")
        self._emit("undo.start", row.seq, title=step.title, target_run=run_id)
        started = time.monotonic()
        try:
            self.ctx.checkpoint("undo")  # (a drill's fault point: a rollback killed or interrupted here)
            step.undo(self.ctx, row.undo_record)
        except JournalError:
            raise
        except NothingChanged as exc:  # (the step says it changed nothing: it is not marked undo_failed)
            raise type(exc)(f"the undo of step {row.seq} ({step.title}) of run {run_id} stopped before changing"
                                 f" anything: {exc.message}", hint=f"{exc.hint or 'fix it'}; then `{self._again}`"
                                 " undoes the run") from None
        except Exception as exc:
            reason = first_line(exc)
            if isinstance(exc, KeyError | TypeError):  # (a bare "'path'" says nothing: a record without what it needs)
                reason = f"{type(exc).__name__}: {reason} — its journaled record lacks what the undo reads"
            with _shielded():
                self.journal.step_status(run_id, row.seq, "undo_failed", reason)
            self._emit("undo.failed", row.seq, title=step.title, error=reason)
            # (an undo that knows what it left undone says so itself; else the step's whole manual undo)
            manual = exc.manual if isinstance(exc, UndoFailed) and exc.manual else _manual(step, row)
            raise UndoFailed(f"undo of step {row.seq} ({step.title}) of run {run_id} failed: {reason}",
                             manual=manual, hint=f"do the manual steps listed, then `{self._again}` again") from None
        with _shielded():
            self.journal.step_status(run_id, row.seq, "undone")
        self._emit("undo.done", row.seq, title=step.title, seconds=round(time.monotonic() - started, 3))
