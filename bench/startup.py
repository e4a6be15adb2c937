"""Startup cost of `golive --help` against the floor of any Typer CLI.

Baseline: a minimal two-command Typer app's `--help` (a bare Typer app's help costs about 2.2x
`import typer`, so that is the fair floor). Both run as fresh interpreters, interleaved, N times;
the ratio of the medians is printed. Goal: <= 1.2. Also checks that `--help` imports none of the
heavy modules (linode_api4, docker, psycopg, dns, pydantic).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = '''
import typer
app = typer.Typer()
@app.command()
def hello(name: str = "x") -> None:
    """Say hello."""
@app.command()
def bye(name: str = "x") -> None:
    """Say bye."""
app()
'''
HEAVY = ("linode_api4", "docker", "psycopg", "dns", "pydantic", "httpx")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, "NO_COLOR": "1", "COLUMNS": "100"})
    return time.perf_counter() - start


def heavy_imports(extra: str = "", modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``modules`` (default: the heavy libraries) `golive --help` imports (should be none)."""
    code = (
        f"import contextlib, io, sys\n{extra}\n"
        "sys.argv = ['golive', '--help']\n"
        "from golive.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        f"print(','.join(sorted(m for m in {modules!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def main(runs: int = 21) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline.py"
        base.write_text(BASELINE)
        golive_cmd = [sys.executable, "-m", "golive", "--help"]
        base_cmd = [sys.executable, str(base), "--help"]
        timed(golive_cmd), timed(base_cmd)  # warm the page cache and .pyc files
        golive_t, base_t = [], []
        for _ in range(runs):
            golive_t.append(timed(golive_cmd))
            base_t.append(timed(base_cmd))
    g, b = statistics.median(golive_t), statistics.median(base_t)
    ratio = g / b
    print(f"runs: {runs} interleaved, fresh interpreters")
    print(f"golive --help median:        {g * 1000:7.1f} ms")
    print(f"minimal Typer --help median: {b * 1000:7.1f} ms")
    print(f"ratio: {ratio:.3f} (goal <= 1.2)")
    heavy = heavy_imports()
    print(f"heavy modules imported by --help: {', '.join(heavy) if heavy else 'none'}")
    return ratio


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
