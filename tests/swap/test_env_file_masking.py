"""env_file values, whatever the variable's name, and the values of [containers].env's references never reach
what golive shows or records. A release that prints its settings and fails its health check showed
`PWD=… | CRED=…` in its "Last log lines" (DB_PWD and CREDENTIALS: no secret-looking word in the name), and from
there the journal (six times), `history --json` and the report kept them."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.conftest import _context
from tests.swap.test_swap import blue_live, under_load


@pytest.fixture(scope="module")
def printenv_image(docker_client: Any, images: dict[str, str]) -> Iterator[str]:
    """Prints its settings at start, then serves /version only: its /healthz is 404, it never gets healthy."""
    tag = images["blue"].split(":")[0] + "-printenv:v1"
    dockerfile = ("FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8000\n"
                  'ENTRYPOINT ["/bin/busybox", "sh", "-c", "echo PWD=$DB_PWD CRED=$CREDENTIALS PIN=$DB_PIN;'
                  ' echo FILE=$FROM_FILE REF=$FROM_ENV; exec /bin/busybox httpd -f -p 8000 -h /www"]\n')
    docker_client.images.build(fileobj=io.BytesIO(_context(dockerfile, {"version": "printenv\n"})),
                               custom_context=True, tag=tag, rm=True, labels={"golive.sandbox": "1"})
    yield tag
    docker_client.images.remove(tag, force=True)


def test_every_env_file_value_and_every_reference_is_masked_whatever_its_name(
        swap_env: SwapEnv, cli, printenv_image: str) -> None:
    env = swap_env
    mark = uuid.uuid4().hex[:8]
    pwd, cred, pin = f"pwdvalue{mark}", f"credvalue{mark}", f"9{int(mark, 16) % 10**8:08d}"  # (a PIN: digits only)
    from_file, from_env = f"filevalue{mark}", f"envvalue{mark}"
    env_file = env.project / "app.env"
    env_file.write_text(f"DB_PWD={pwd}\nCREDENTIALS={cred}\nDB_PIN={pin}\n")
    env_file.chmod(0o600)
    secret = env.project / "from-file.txt"
    secret.write_text(from_file + "\n")
    secret.chmod(0o600)
    env.write_config(image=printenv_image, health_timeout=2, containers_extra=(
        'env_file = "app.env"\n'
        f'env = {{ FROM_FILE = "file:{secret}", FROM_ENV = "env:XMASK_VALUE" }}\n'))
    failed = []
    under_load(env, lambda: failed.extend(cli("swap", "--yes", *args, env={"XMASK_VALUE": from_env})
                                          for args in ([], ["--json"])))
    assert [f.exit_code for f in failed] == [1, 1], failed[0].stderr
    assert "Last log lines: PWD=*** CRED=*** PIN=*** | FILE=*** REF=***" in failed[0].stderr, failed[0].stderr
    blue_live(env)
    runs = [line.split()[0] for line in cli("history").lines[1:]]
    shown = [cli("history").stdout, *(cli("history", run, *args).stdout for run in runs for args in ([], ["--json"]))]
    shown += [cli("report", run, "--format", "md", "-o", "-").stdout for run in runs]
    state = env.project / ".golive"
    on_disk = [p.read_bytes().decode(errors="replace") for p in state.rglob("*") if p.is_file()]
    assert any("PWD=*** CRED=***" in text for text in on_disk)  # (the journal has the log line, masked)
    for text in [*(f.stdout + f.stderr for f in failed), *shown, *on_disk]:
        for value in (pwd, cred, pin, from_file, from_env):
            assert value not in text
