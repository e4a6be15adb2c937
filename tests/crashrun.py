"""A 5-step run of file steps, as its own process, for the crash and lock tests.

Usage: python crashrun.py DIR [--no-rollback]. Faults come from GOLIVE_FAULT. Exits with golive's
exit codes (errors rendered as the CLI renders them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from golive.cli.application import App
from golive.cli.render import render_error
from golive.errors import GoliveError
from golive.steps.files import RemoveFile, WriteFile


def steps(root: Path) -> list[WriteFile | RemoveFile]:
    return [
        WriteFile(path=str(root / "a.txt"), content="a: new\n"),
        WriteFile(path=str(root / "b.txt"), content="b: created\n"),
        RemoveFile(path=str(root / "c.txt")),
        WriteFile(path=str(root / "d.txt"), content="d: secret-ish\n", mode=0o600),
        WriteFile(path=str(root / "e.txt"), content="e: new\n", mode=0o644),
    ]


def main() -> int:
    root = Path(sys.argv[1])
    app = App(root / "golive.toml")
    try:
        app.lock()
        runner = app.runner()
        runner.run("crashrun", list(steps(root)), confirm=lambda p: app.confirm("crashrun", p, True),
                   auto_rollback="--no-rollback" not in sys.argv)
    except GoliveError as exc:
        return render_error(app, exc)
    finally:
        app.release_locks()
    return 0


if __name__ == "__main__":
    sys.exit(main())
