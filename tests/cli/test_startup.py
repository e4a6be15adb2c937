"""`golive --help` must stay light: none of the heavy libraries are imported to print it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"linode_api4", "docker", "psycopg", "dns", "pydantic", "httpx"}


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import contextlib, io, sys\n"
        "sys.argv = ['golive', '--help']\n"
        "from golive.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))
    assert loaded & HEAVY == set()
    assert "typer" in loaded  # the check itself saw the CLI load
