"""Timeline reports of a run from the journal: Markdown, HTML (with the SVG inline) or SVG.

A report shows every step's apply span and, when it was undone (by the run's own automatic
rollback or a later `golive rollback`), its undo span, on one time axis; then the changes and the
events. Everything comes from the journal, which holds no secrets; the text is redacted once more.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from golive.core.journal import Journal, RunRow, StepRow
from golive.errors import UsageError
from golive.secrets import REDACTOR

__all__ = ["FORMATS", "Span", "render_report", "timeline"]

FORMATS = ("md", "html", "svg")
COLOURS = {"apply": "#2e7d32", "failed": "#c62828", "killed": "#ef6c00", "undo": "#1565c0"}


@dataclass(frozen=True)
class Span:
    seq: int
    title: str
    kind: str  # apply | failed | killed (its process ended mid-apply) | undo
    start: float  # seconds from the run's start
    end: float


def _t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def timeline(journal: Journal, run: RunRow) -> list[Span]:
    origin = _t(run.started_at)
    spans: list[Span] = []
    said = journal.events(run.id)
    for step in journal.steps(run.id):
        if step.started_at:
            end = step.finished_at or max([e["ts"] for e in said if e["seq"] == step.seq], default=step.started_at)
            kind = "failed" if step.error and step.status in ("failed", "undone", "undo_failed") else \
                "killed" if step.finished_at is None else "apply"
            spans.append(Span(step.seq, step.title, kind, (_t(step.started_at) - origin).total_seconds(),
                              max((_t(end) - origin).total_seconds(), (_t(step.started_at) - origin).total_seconds())))
    # undo events: the run's own automatic rollback, and every `golive rollback` run aimed at it
    undo_events = [e for r in (run, *journal.children(run.id)) for e in journal.events(r.id)
                   if e["kind"] in ("undo.start", "undo.done", "undo.failed")]
    started: dict[int, str] = {}
    for event in undo_events:
        if event["kind"] == "undo.start":
            started[event["seq"]] = event["ts"]
        elif event["seq"] in started:
            title = (event["data"] or {}).get("title", "")
            spans.append(Span(event["seq"], title, "undo", (_t(started.pop(event["seq"])) - origin).total_seconds(),
                              (_t(event["ts"]) - origin).total_seconds()))
    return spans


def _svg(run: RunRow, spans: list[Span]) -> str:
    label_w, bar_w, row_h = 300, 560, 22
    total = max([s.end for s in spans] + [0.001])
    rows = sorted({(s.seq, s.title) for s in spans if s.kind != "undo"} | {(s.seq, s.title) for s in spans})
    index = {seq: i for i, (seq, _) in enumerate(dict(rows).items())}
    height = 40 + row_h * max(len(index), 1) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 20}" height="{height}"'
           f' font-family="sans-serif" font-size="12">',
           f'<text x="4" y="16" font-weight="bold">run {html.escape(run.id)}: {html.escape(run.command)}'
           f' — {html.escape(run.status)}</text>']
    for seq, title in dict(rows).items():
        y = 30 + row_h * index[seq]
        out.append(f'<text x="4" y="{y + 15}">[{seq}] {html.escape(REDACTOR(title))[:48]}</text>')
    for span in spans:
        y = 30 + row_h * index[span.seq] + (11 if span.kind == "undo" else 3)
        x = label_w + bar_w * span.start / total
        w = max(bar_w * (span.end - span.start) / total, 2)
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="8" fill="{COLOURS[span.kind]}">'
                   f'<title>{span.kind} {span.end - span.start:.3f}s</title></rect>')
    axis_y = 30 + row_h * max(len(index), 1) + 14
    for tick in range(5):
        x = label_w + bar_w * tick / 4
        value = total * tick / 4
        out.append(f'<text x="{x:.1f}" y="{axis_y}" text-anchor="middle">'
                   f'{value:.3f}s</text>' if total < 10 else f'<text x="{x:.1f}" y="{axis_y}" text-anchor="middle">'
                   f'{value:.1f}s</text>')
    for i, (kind, colour) in enumerate(COLOURS.items()):
        x = label_w + bar_w - 70 * len(COLOURS) + i * 70
        out.append(f'<rect x="{x}" y="8" width="10" height="8" fill="{colour}"/><text x="{x + 14}" y="16">{kind}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _undos(journal: Journal, run: RunRow) -> tuple[str, list[str]]:
    """A `golive rollback` run's part of the report (its own steps are none): the runs it rolled back, and each
    undo it did."""
    targets = [f"{t} ({found.command})" if (found := journal.run(t)) else t for t in journal.targets(run)]
    lines = ["## Steps undone", ""]
    for undo in journal.undos(run.id):
        took = (_t(undo.finished_at) - _t(undo.started_at)).total_seconds() if undo.finished_at else None
        lines.append(f"### [{undo.seq}] {undo.title} (run {undo.run}) — "
                     + {"undone": "undone", "failed": "undo failed"}.get(undo.result, "not finished"))
        lines.append(f"- started: {undo.started_at}, " + (f"took {took:.3f}s" if took is not None else
                                                           "never ended: its rollback stopped in the middle of it"))
        if undo.error:
            lines.append(f"- error: {undo.error}")
        lines.append("")
    return f"- rolled back: run {', '.join(targets)}" if targets else "- rolled back: (no run named)", lines


def _md(run: RunRow, steps: list[StepRow], spans: list[Span], events: list[dict[str, Any]],
        undos: tuple[str, list[str]] | None = None) -> str:
    lines = [f"# golive run {run.id}", "",
             f"- command: `{run.command}`", f"- status: **{run.status}**",
             f"- by: {run.user}@{run.host} (pid {run.pid})",
             f"- started: {run.started_at}", f"- finished: {run.finished_at or '-'}"]
    if run.error:
        lines.append(f"- error: {run.error}")
    if undos is not None:
        lines.append(undos[0])
    lines += ["", "## Timeline", "", "| # | step | what | starts at | took |", "|---|---|---|---|---|"]
    for span in sorted(spans, key=lambda s: (s.start, s.seq)):
        lines.append(f"| {span.seq} | {span.title} | {span.kind} | +{span.start:.3f}s | {span.end - span.start:.3f}s |")
    lines.append("")
    if undos is not None:  # (a rollback run: the undos it did are its steps)
        lines += undos[1]
    else:
        lines += ["## Steps", ""]
    for step in steps:
        lines.append(f"### [{step.seq}] {step.title} — {step.status}")
        for change in step.changes or []:
            lines.append(f"- `{change['what']}`: {change.get('before')} → {change.get('after')}")
        if step.started_at and step.finished_at is None and step.changes:
            lines.append("- killed mid-apply: these changes were planned; which of them were made before its process"
                         " ended is not known (" + ("its undo put back whatever was)" if step.status in ("undone",)
                                                    else "`golive rollback` puts back whatever was)"))
        if step.error:
            lines.append(f"- error: {step.error}")
        lines.append("")
    lines += ["## Events", ""]
    for event in events:
        what = event.get("message") or (event["data"] or {}).get("title") or ""
        where = f"[{event['seq']}] " if event["seq"] else ""
        by = f"(rollback {event['rollback']}) " if event.get("rollback") else ""
        lines.append(f"- {event['ts']} `{event['kind']}` {by}{where}{what}".rstrip())
    return REDACTOR("\n".join(lines) + "\n")


def render_report(journal: Journal, run_id: str, fmt: str, crashed: Callable[[RunRow], bool] | None = None) -> str:
    """``crashed``: whether a run the journal says is running has lost its process (the report says so, as
    `golive status` and `history` do; it said "running" until the run was rolled back)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    run = journal.run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id} in the journal", hint="`golive history` lists the runs")
    if crashed is not None and crashed(run):
        again = run.args.get("again") if isinstance(run.args.get("again"), str) else "golive rollback"
        run = replace(run, status=f"crashed (its process is gone: `{again}` finishes it)" if run.command == "rollback"
                      else "crashed (its process is gone: `golive rollback` undoes what it applied)")
    spans = timeline(journal, run)
    if fmt == "svg":
        return REDACTOR(_svg(run, spans))
    # the run's events, then those of every `golive rollback` aimed at it (what the undo did and said)
    events = [*journal.events(run_id), *({**e, "rollback": c.id} for c in journal.children(run_id) for e in journal.events(c.id))]
    steps = journal.steps(run_id)
    markdown = _md(run, steps, spans, events, _undos(journal, run) if run.command == "rollback" and not steps else None)
    if fmt == "md":
        return markdown
    body = html.escape(markdown)
    return REDACTOR(f"<!doctype html>\n<html><head><meta charset='utf-8'><title>golive run {html.escape(run.id)}</title>"
                    f"</head><body>\n{_svg(run, spans)}<pre>{body}</pre>\n</body></html>\n")
