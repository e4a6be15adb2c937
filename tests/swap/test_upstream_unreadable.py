"""An upstream file golive cannot read as text — a directory where the file should be, bytes that are not UTF-8 —
was `internal error: IsADirectoryError` / `UnicodeDecodeError`. It is one line naming the file and the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import under_load


def _break(env: SwapEnv, how: str) -> str:
    """The upstream file made unreadable; the error's words for it."""
    path = env.apache.upstream_file
    text = path.read_bytes()
    path.unlink()
    if how == "directory":
        path.mkdir()
        return f"error: the upstream file {path} is a directory, not a file ([proxy].upstream_file)"
    line = text.rstrip(b"\n") + b"  # caf"
    path.write_bytes(line + b"\xe9\n")  # (latin-1, as an editor may save it)
    return f"error: the upstream file {path} is not UTF-8 text (byte 0xe9 at offset {len(line)})"


def _mend(env: SwapEnv, port: int) -> None:
    path = env.apache.upstream_file
    if path.is_dir():
        path.rmdir()
    env.apache.point_at(f"http://127.0.0.1:{port}")


@pytest.fixture(autouse=True)
def _mended_at_the_end(swap_env: SwapEnv) -> Iterator[None]:
    """Apache's own stop reads its config: a test that fails with the file broken must not leave Apache running."""
    yield
    if swap_env.apache.upstream_file.is_dir() or not swap_env.apache.upstream_file.read_bytes().isascii():
        _mend(swap_env, swap_env.blue_port)


@pytest.mark.parametrize("how", ["directory", "latin-1"])
def test_a_swap_with_an_unreadable_upstream_file_is_one_line(swap_env: SwapEnv, cli, how: str) -> None:
    env = swap_env
    said = _break(env, how)
    out = []
    under_load(env, lambda: out.extend(cli("swap", *args) for args in (["--dry-run"], ["--yes"])))
    for refused in out:
        assert refused.exit_code == 2, refused.stderr
        lines = refused.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(said + " — "), lines
        assert "internal error" not in refused.stderr
        assert "Define GOLIVE_UPSTREAM http://127.0.0.1:<live host_port>" in lines[0], lines
    assert env.container(env.green) is None
    _mend(env, env.blue_port)
    assert cli("swap", "--yes").exit_code == 0


@pytest.mark.parametrize("how", ["directory", "latin-1"])
def test_a_rollback_with_an_unreadable_upstream_file_is_one_line_and_leaves_green_serving(
        swap_env: SwapEnv, cli, how: str) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    said = _break(env, how)
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert set(result.bodies()) == {"green"}
    failed = out[0]
    assert "internal error" not in failed.stderr
    assert failed.exit_code == 4, failed.stderr
    first = failed.stderr.splitlines()[0]
    assert said.removeprefix("error: ") in first, first
    assert env.container(env.green).status == "running"
    _mend(env, env.green_port)  # put right by hand: the rollback finishes
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"
