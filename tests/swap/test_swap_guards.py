"""What a swap and a finalize must find out before they remove a container, and failures named as what they are.

- Without the vhost's X-Golive-Upstream header (mod_headers off: Debian's default), an upstream file edited and not
  reloaded made `swap` and `swap finalize` remove the colour Apache served: version_path tells them apart.
- [containers.blue].name and [containers.green].name exchanged: `swap` removed the container serving the live
  port; and a taken idle host port was found only after the idle container was removed.
- A reload_command that cannot run at all (a typo) is a failed reload: the undo goes on when blue still answers.
- https public_url with public_host: the certificate is checked for public_host, and a TLS failure says so.
- A container prepared with `swap --prepare` is not kept once its configuration changed.
- `--image` is read as [containers].image is: a usage error.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from golive.sandbox.apache import MODULES, upstream_header
from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from golive.sandbox.bluegreen import free_port
from tests.conftest import require_real
from tests.swap.test_swap import blue_live, failed_swap, under_load

SITE = "site.example.test"


def _no_upstream_header(env: SwapEnv) -> None:
    """The vhost without `Header … X-Golive-Upstream` (mod_headers off): nothing says which upstream served."""
    conf = env.apache.conf.read_text()
    assert upstream_header(env.apache.variable) in conf
    env.apache.conf.write_text(conf.replace(upstream_header(env.apache.variable) + "\n", ""))
    env.apache.graceful()


# -- 1. version_path tells which colour Apache serves ------------------------------------------------------------
def test_without_the_upstream_header_version_path_tells_swap_and_finalize_apache_serves_the_idle_colour(
        swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    _no_upstream_header(env)
    assert cli("swap", "--yes").exit_code == 0  # green live
    env.apache.point_at(f"http://127.0.0.1:{env.blue_port}")  # edited by hand, not reloaded: Apache serves green
    green_id = env.container(env.green).id
    out = []
    commands = [("swap", "--dry-run", "--image", v3), ("swap", "--yes", "--image", v3), ("swap", "--yes"),
                ("swap", "--prepare", "--yes", "--image", v3), ("swap", "finalize", "--dry-run"),
                ("swap", "finalize", "--yes")]
    result = under_load(env, lambda: out.extend(cli(*args) for args in commands))
    assert set(result.bodies()) == {"green"}
    seen = (f"through the proxy /version answers 'green', as green does on 127.0.0.1:{env.green_port}, not 'blue' as"
            f" blue does on 127.0.0.1:{env.blue_port}")
    fix = (" — make the upstream file point at what Apache should serve, run the proxy's configtest and graceful"
           " reload, then run this again")
    for args, refused in zip(commands, out, strict=True):
        assert refused.exit_code == 1, (args, refused.stdout, refused.stderr)
        said = (f"error: the live colour blue ({env.blue}) is not what Apache serves: {seen}, though the upstream file"
                f" {env.apache.upstream_file} says blue: finalize would remove green, the colour serving; nothing was"
                " changed" if "finalize" in args else
                f"error: Apache serves green, not blue as the upstream file {env.apache.upstream_file} says ({seen}):"
                " a swap would replace green, the colour serving; nothing was changed")
        assert refused.stderr.splitlines() == [said + fix], (args, refused.stderr)
    assert env.container(env.green).id == green_id
    assert env.container(env.blue).status == "running"


# -- 2. the container the swap replaces ----------------------------------------------------------------------------
def _exchange_names(env: SwapEnv) -> None:
    config = env.project / "golive.toml"
    text = config.read_text()
    config.write_text(text.replace(env.blue, "@@blue@@").replace(env.green, env.blue).replace("@@blue@@", env.green))


def test_exchanged_container_names_never_remove_the_container_serving_the_live_port(
        swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    blue_id = env.container(env.blue).id
    _exchange_names(env)  # [containers.green].name is now the blue container, publishing the live port
    squatter = socket.socket()  # and green's host port taken too: still refused for the names, before any removal
    out = []
    try:
        result = under_load(env, lambda: out.extend(cli(*args) for args in (
            ("swap", "--dry-run"), ("swap", "--yes", "--image", v3), ("swap", "--prepare", "--yes"))))
        squatter.bind(("127.0.0.1", env.green_port))
        squatter.listen()
        out.append(cli("swap", "--yes", "--image", v3))
    finally:
        squatter.close()
    assert set(result.bodies()) == {"blue"}
    for refused in out:
        assert refused.exit_code == 1, refused.stderr
        assert refused.stderr.splitlines() == [
            f"error: container {env.blue}, the idle colour green's by [containers.green].name, publishes 127.0.0.1:"
            f"{env.blue_port}, the live colour blue's host port: the swap would remove the container serving the"
            " site; nothing was changed — are [containers.blue].name and [containers.green].name exchanged?"
            " `docker ps` shows which container publishes which port: fix golive.toml, then run again"], refused.stderr
    assert env.container(env.blue).id == blue_id and env.container(env.blue).status == "running"
    assert env.container(env.green) is None


def test_a_taken_idle_host_port_is_found_before_the_idle_container_is_removed(swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    assert cli("swap", "--prepare", "--yes").exit_code == 0  # a green container on green's port
    green_id = env.container(env.green).id
    taken = free_port()
    config = env.project / "golive.toml"
    config.write_text(config.read_text().replace(f"host_port = {env.green_port}\n", f"host_port = {taken}\n"))
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    out = []
    try:
        result = under_load(env, lambda: out.extend([cli("swap", "--dry-run", "--image", v3),
                                                     cli("swap", "--yes", "--image", v3)]))
    finally:
        squatter.close()
    assert result.bodies() == ["blue"]
    for refused in out:
        assert refused.exit_code == 1, refused.stderr
        assert refused.stderr == (f"error: host port 127.0.0.1:{taken} for green is taken by something else; nothing"
                                  f" was changed — free it, or change [containers.green].host_port\n")
    assert env.container(env.green).id == green_id  # not removed first
    blue_live(env)


# -- 3. a reload command that cannot run -------------------------------------------------------------------------
def test_a_reload_command_that_cannot_run_is_a_failed_reload_and_the_undo_goes_on(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(reload_command=["/usr/sbin/apachectl-typo", "graceful"])
    failed = failed_swap(env, cli)  # exit 1, not 4: Apache never reloaded, blue answered throughout
    assert "proxy reload `/usr/sbin/apachectl-typo graceful` could not run: [Errno 2]" in failed.stderr
    assert "the public URL answers from blue all the same, so the undo goes on" in failed.stdout


def test_a_reload_or_test_command_that_cannot_run(tmp_path: Path) -> None:
    from golive.errors import GoliveError
    from golive.swap.proxy import ProxyGateway, ReloadFailed
    from tests.swap.test_proxy import gateway

    missing = str(tmp_path / "no-such-apachectl")
    gone = gateway(tmp_path, "reload")
    proxy = ProxyGateway(gone.proxy.model_copy(update={"reload_command": [missing, "graceful"],
                                                       "test_command": [missing, "configtest"]}), gone.file)
    with pytest.raises(ReloadFailed, match=r"^proxy reload `\S+no-such-apachectl graceful` could not run: \[Errno 2\]"):
        proxy.reload()
    with pytest.raises(GoliveError) as raised:
        proxy.test()
    assert type(raised.value) is GoliveError  # (a test that cannot run is no reload: nothing was reloaded)


# -- 4. https public_url with public_host ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA of the test's own and a certificate for SITE signed by it (no IP address in it)."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=golive test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "site.key", "-out", "site.csr", "-subj", f"/CN={SITE}")
    (folder / "ext.cnf").write_text(f"subjectAltName=DNS:{SITE}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "site.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": folder / "ca.pem", "cert": folder / "site.pem", "key": folder / "site.key"}


@pytest.fixture
def trusting(tls: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """golive's probe client made anew, trusting the test's CA (httpx reads SSL_CERT_FILE)."""
    from golive.swap import proxy

    monkeypatch.setenv("SSL_CERT_FILE", str(tls["ca"]))
    monkeypatch.setattr(proxy, "_client", None)


def test_the_probe_checks_the_certificate_for_public_host_and_names_a_tls_failure(
        tls: dict[str, Path], trusting: None) -> None:
    from golive.swap.proxy import probe

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"host={self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert"], tls["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/healthz"
        assert probe(url, host=SITE) == (200, f"host={SITE}")
        assert probe(url, host=f"{SITE}:443") == (200, f"host={SITE}:443")  # (the name without its port)
        status, said = probe(url)
        assert status == 0 and said.startswith("TLS: certificate verify failed: IP address mismatch"), said
        status, said = probe(url, host="other.example.test")
        assert status == 0 and said.startswith("TLS: certificate verify failed: Hostname mismatch"), said
    finally:
        server.shutdown()
        server.server_close()


def _serve_tls(env: SwapEnv, tls: dict[str, Path]) -> str:
    """The sandbox Apache also on an https port (mod_ssl), with the certificate for SITE."""
    require_real("Apache's mod_ssl", (MODULES / "mod_ssl.so").exists())  # (Debian's apache2 ships it)
    port = free_port()
    with env.apache.conf.open("a") as conf:
        conf.write(f"LoadModule ssl_module {MODULES}/mod_ssl.so\nListen 127.0.0.1:{port} https\n"
                   f"<VirtualHost 127.0.0.1:{port}>\n    ServerName {SITE}\n    SSLEngine on\n"
                   f"    SSLCertificateFile {tls['cert']}\n    SSLCertificateKeyFile {tls['key']}\n</VirtualHost>\n")
    env.apache.graceful()
    return f"https://127.0.0.1:{port}"


def test_an_https_public_url_with_public_host_swaps_and_without_it_the_tls_failure_is_named(
        swap_env: SwapEnv, cli, tls: dict[str, Path], trusting: None) -> None:
    import time

    env = swap_env
    public = _serve_tls(env, tls)
    time.sleep(1.5)  # (the graceful reload's new children)
    base = env.write_config().read_text()
    config = env.project / "golive.toml"
    config.write_text(base.replace(f'public_url = "{env.apache.url}"', f'public_url = "{public}"'))
    refused = cli("swap", "--dry-run")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: the site's TLS handshake fails through the proxy ({public}/healthz: TLS:"
                                     " certificate verify failed: IP address mismatch"), refused.stderr
    assert "valid for [proxy].public_host" in refused.stderr
    config.write_text(config.read_text() + f'public_host = "{SITE}"\n')
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert result.bodies()[0] == "blue" and result.bodies()[-1] == "green"
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"


# -- 5. a prepared container made with another configuration -----------------------------------------------------
def test_a_prepared_container_is_made_again_once_its_configuration_changed(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env_file = env.project / "app.env"
    env_file.write_text("DATABASE_URL=postgres://app:old-pw-5521@db-old/app\n")
    env_file.chmod(0o600)
    env.write_config(containers_extra='env_file = "app.env"\n')
    assert cli("swap", "--prepare", "--yes").exit_code == 0
    prepared = env.container(env.green)
    spec = prepared.labels["golive.spec"]
    assert "old-pw-5521" not in spec and len(spec) == 32
    kept = cli("swap", "--dry-run")  # nothing changed: kept
    assert "prepared (`swap --prepare`): kept" in kept.stdout, kept.stdout
    env_file.write_text("DATABASE_URL=postgres://app:new-pw-8832@db-new/app\n")
    planned = cli("swap", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert ("created again: the prepared container was made with another configuration (env, volumes, networks or"
            " ports changed since `swap --prepare`)") in planned.stdout, planned.stdout
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert result.bodies()[0] == "blue" and result.bodies()[-1] == "green"
    green = env.container(env.green)
    assert green.id != prepared.id
    assert "DATABASE_URL=postgres://app:new-pw-8832@db-new/app" in green.attrs["Config"]["Env"]
    assert green.labels["golive.spec"] != spec


# -- 6. --image as [containers].image ----------------------------------------------------------------------------
def test_a_bad_image_reference_is_a_usage_error(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(docker_url="unix:///nonexistent/docker.sock")  # (refused before Docker is asked anything)
    for args in (("swap", "--image", "Bad Image", "--yes"), ("swap", "--prepare", "--image", "Bad Image", "--yes"),
                 ("swap", "--dry-run", "--image", "web:1.0 ")):
        refused = cli(*args)
        image = args[args.index("--image") + 1]
        assert (refused.exit_code, refused.stderr) == (
            2, f"error: --image {image!r} is not an image reference ([registry/]name[:tag][@digest], the name in"
               ' lowercase) — e.g. --image "directory-web:1.4"\n'), refused.stderr
    assert cli("history").stdout.startswith("no runs")
