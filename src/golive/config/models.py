"""pydantic models of ``golive.toml``. Every section but ``[project]`` is optional until the command
that needs it runs. Unknown keys are errors (``extra="forbid"``); secrets are references only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from golive.secrets import SecretRef, url_has_password

__all__ = ["GoliveConfig", "Secret"]


def _secret(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        from golive.config.loader import kind_of

        raise ValueError(f'expected a string: a reference "env:NAME" or "file:PATH"; not {kind_of(value)}')
    return SecretRef.parse(value)


Secret = Annotated[SecretRef, BeforeValidator(_secret)]


def _literal_or_secret(fix: str, literal: str) -> Any:
    """A validator: a literal without a password in it, or a secret reference (``fix``: what to do instead of a
    password; ``literal``: what the literal is, named when the value is not a string at all)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str | SecretRef):  # (not the union's "instance of SecretRef" at the user)
            from golive.config.loader import kind_of

            raise ValueError(f'expected a string: {literal}, or a reference "env:NAME" / "file:PATH";'
                             f" not {kind_of(value)}")
        if isinstance(value, str) and value.startswith(("env:", "file:")):
            return SecretRef.parse(value)
        if isinstance(value, str) and url_has_password(value):
            raise ValueError(f"holds a password: {fix}")
        return value

    return check


# a database URL; a container variable
DbUrl = Annotated[SecretRef | str, BeforeValidator(_literal_or_secret(
    'put the URL in an environment variable and write url = "env:NAME"', "the URL (without a password)"))]
EnvValue = Annotated[SecretRef | str, BeforeValidator(_literal_or_secret(
    'write "env:NAME" (a variable of golive\'s environment) or move it to env_file',
    'the value in quotes (NAME = "1", not NAME = 1)'))]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Project(Section):
    name: str = "golive"
    state_dir: Path = Path(".golive")


class Linode(Section):
    token: Secret
    api_url: str = "https://api.linode.com/v4"
    retries: int = Field(5, ge=0, le=20, description="retries on 408/429/5xx, honouring Retry-After")
    retry_interval: float = Field(1.0, ge=0, description="seconds between retries when no Retry-After is given")
    timeout: float = Field(10.0, gt=0, le=300, description="seconds to wait for each answer of the Linode API")

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s):// URL — write https://api.linode.com/v4 (or the URL"
                             " `golive sandbox linode` prints)")
        if not parts.path.rstrip("/").endswith(("/v4", "/v4beta")):
            raise ValueError(f"{value!r} does not end in the API's version, /v4 — write {value.strip().rstrip('/')}/v4"
                             " (every request would be answered 404)")
        return value.strip().rstrip("/")


def _address(value: str, version: int) -> str:
    """An IPv4 or IPv6 address in its canonical spelling (what Linode and DNS answers are compared with)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv{version} address") from None
    if address.version != version:
        raise ValueError(f"{value!r} is an IPv{address.version} address; this key takes IPv{version}"
                         f" ({'old_target_v6/new_target_v6 for AAAA records' if version == 4 else 'old_target/new_target'})")
    return str(address)


class DnsRecord(Section):
    name: str = Field(description='relative to [dns].domain; "" is the apex')
    type: Literal["A", "AAAA"] = "A"

    @field_validator("name")
    @classmethod
    def _apex(cls, value: str) -> str:
        if value == "@":
            raise ValueError('the apex is written "" (Linode never uses "@")')
        return value


class Dns(Section):
    domain: str
    records: list[DnsRecord] = Field(min_length=1)
    old_target: str
    new_target: str
    old_target_v6: str | None = None
    new_target_v6: str | None = None
    cutover_ttl: int = Field(300, ge=0, le=2419200)
    switch_ttl: int | None = Field(None, ge=0, le=2419200, description="also set this TTL when switching")
    nameservers: list[str] = Field(default_factory=list)
    propagation_timeout: float = Field(300, gt=0)

    @field_validator("old_target", "new_target")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        return _address(value, 4)

    @field_validator("old_target_v6", "new_target_v6")
    @classmethod
    def _ipv6(cls, value: str | None) -> str | None:
        return None if value is None else _address(value, 6)

    @field_validator("nameservers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, port = entry, "53"
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                port = rest.removeprefix(":") or "53"
            elif entry.count(":") == 1:
                host, _, port = entry.partition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{entry!r} is not host, host:port, ip:port or [v6]:port (port 1-65535)")
        return value

    @field_validator("cutover_ttl", "switch_ttl")
    @classmethod
    def _linode_ttl(cls, value: int | None) -> int | None:
        from golive.dns.ttl import ttl_problem

        problem = None if value is None else ttl_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _targets(self) -> Dns:
        if any(r.type == "AAAA" for r in self.records) and not (self.old_target_v6 and self.new_target_v6):
            raise ValueError("AAAA records need old_target_v6 and new_target_v6")
        for old, new in (("old_target", "new_target"), ("old_target_v6", "new_target_v6")):
            if getattr(self, old) is not None and getattr(self, old) == getattr(self, new):
                # (a switch would change nothing, and `status` could not tell old from new)
                raise ValueError(f"{old} and {new} are the same address {getattr(self, old)}: a switch would move"
                                 f" nothing — set {new} to the new server's address")
        return self

    def fqdn(self, name: str) -> str:
        return f"{name}.{self.domain}" if name else self.domain

    def target(self, rtype: str, side: str) -> str:
        """The target a record of ``rtype`` has on ``side`` ("old" or "new")."""
        if rtype == "AAAA":
            value = self.old_target_v6 if side == "old" else self.new_target_v6
            return value or ""
        return self.old_target if side == "old" else self.new_target


_FREEZE_WAITS = {"timeout": 120.0, "status_timeout": 30.0, "confirm_timeout": 10.0}
_COMMAND_KEYS = {
    "on": "the command that stops writes (maintenance on)",
    "off": "the command that lets writes in again (the undo runs it whatever status says: it must be safe to run"
           " twice)",
    "status": "exit 0 = frozen, 1 = not frozen (golive checks the freeze with it after on and off)",
}


class Freeze(Section):
    method: Literal["file", "command", "postgres"] = "file"
    flag_file: Path | None = None
    on: list[str] | None = None
    off: list[str] | None = None
    status: list[str] | None = None
    # seconds; None is the default of _FREEZE_WAITS (read through wait(); left out of `config show` unless set)
    timeout: float | None = Field(None, gt=0, le=3600, description="how long the on and off commands may take")
    status_timeout: float | None = Field(None, gt=0, le=600, description="how long the status command may take")
    # after on/off, how long status is asked again (every 0.5 s) until it agrees: an app may take a moment
    # (a reload) before its maintenance mode holds
    confirm_timeout: float | None = Field(None, ge=0, le=600)

    def wait(self, key: Literal["timeout", "status_timeout", "confirm_timeout"]) -> float:
        value = getattr(self, key)
        return _FREEZE_WAITS[key] if value is None else float(value)

    @model_validator(mode="after")
    def _complete(self) -> Freeze:
        if self.method == "file" and self.flag_file is None:
            raise ValueError('method "file" needs flag_file = "/path/the/old/app/checks"')
        missing = [key for key in _COMMAND_KEYS if not getattr(self, key)] if self.method == "command" else []
        if missing:  # (one key at a time, with what it is for: the file names keys, not the model)
            raise ValueError(f'method "command" needs {missing[0]} = ["…"]: {_COMMAND_KEYS[missing[0]]}')
        return self


class Source(Section):
    url: DbUrl
    freeze: Freeze | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretRef | str) -> SecretRef | str:
        if isinstance(value, str) and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError('must start with sqlite:/// or postgresql:// (or be "env:NAME")')
        return value

    @field_validator("freeze")
    @classmethod
    def _freeze_fits(cls, value: Freeze | None, info: ValidationInfo) -> Freeze | None:
        url = info.data.get("url")  # (an "env:NAME" URL is checked when it is read: freeze/steps.py)
        if value is not None and value.method == "postgres" and isinstance(url, str) and url.startswith("sqlite:"):
            raise ValueError('method "postgres" needs a postgresql:// source; for SQLite use method "file" or "command"')
        return value


class Target(Section):
    url: DbUrl
    backup_keep: int = Field(3, ge=1)
    # how long `rollback --restore-data` waits for a lock another session (the new application) holds
    lock_timeout: float = Field(30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretRef | str) -> SecretRef | str:
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError('must start with postgresql:// (or be "env:NAME")')
        return value


class Media(Section):
    from_: Path = Field(alias="from")
    to: Path


class Sync(Section):
    mapping: Path = Path("mapping.toml")
    media: list[Media] = Field(default_factory=list)
    max_rejects: int = Field(0, ge=0)


# an image reference as Docker reads it (distribution/reference's grammar): [domain[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_IMAGE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")


class Color(Section):
    name: str
    host_port: int = Field(ge=1, le=65535)


class Containers(Section):
    docker_url: str | None = None
    image: str
    port: int = Field(8000, ge=1, le=65535)
    # the container's environment; secrets as references ("env:NAME", "file:PATH") or in env_file (0600)
    env: dict[str, EnvValue] = Field(default_factory=dict)
    env_file: Path | None = None
    # what the new colour needs besides its image (docker run's -v, --network, --add-host)
    volumes: list[str] = Field(default_factory=list, description='"/host/path:/container/path[:ro]" or "volume:/path"')
    networks: list[str] = Field(default_factory=list, description="Docker networks to attach the new colour to")
    extra_hosts: dict[str, str] = Field(default_factory=dict, description='e.g. "host.docker.internal" = "host-gateway"')
    health_path: str = "/healthz"
    health_timeout: float = Field(60, gt=0)
    version_path: str | None = None
    bake_time: float = Field(900, ge=0, description="seconds after a swap before `swap finalize` may remove the old colour")
    drain_time: float = Field(1.0, ge=0, description="seconds to let the proxy's old workers finish before a colour is removed")
    blue: Color
    green: Color

    @field_validator("volumes")
    @classmethod
    def _volume_syntax(cls, volumes: list[str]) -> list[str]:
        for volume in volumes:
            parts = volume.split(":")
            if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") or \
                    (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ValueError(f'{volume!r} is not "/host/path:/container/path[:ro|rw]" nor "volume:/path[:ro|rw]"')
        return volumes

    @field_validator("image")
    @classmethod
    def _image_reference(cls, image: str) -> str:
        if not _IMAGE.fullmatch(image):
            raise ValueError(f"{image!r} is not an image reference ([registry/]name[:tag][@digest], the name in"
                             " lowercase, e.g. \"directory-web:1.4\")")
        return image

    @field_validator("health_path", "version_path")
    @classmethod
    def _a_path(cls, path: str | None) -> str | None:
        if path is not None and not path.startswith("/"):
            raise ValueError(f"{path!r} is a URL path: it starts with / (e.g. \"/{path}\")")
        return path

    @model_validator(mode="after")
    def _distinct(self) -> Containers:
        if self.blue.name == self.green.name:
            raise ValueError(f"blue and green have the same name {self.blue.name!r}: give each its own")
        if self.blue.host_port == self.green.host_port:
            raise ValueError(f"blue and green have the same host_port {self.blue.host_port}: give each its own")
        return self

    def color(self, name: str) -> Color:
        return self.blue if name == "blue" else self.green


class Proxy(Section):
    kind: Literal["apache"] = "apache"
    # reload: upstream_file is an Include (Define), switched by configtest + graceful restart;
    # map: upstream_file is a mod_rewrite txt map, switched by an atomic rename (no restart)
    switch: Literal["reload", "map"] = "reload"
    upstream_file: Path
    upstream_variable: str = "GOLIVE_UPSTREAM"
    test_command: list[str] = Field(default_factory=lambda: ["apachectl", "configtest"])
    reload_command: list[str] = Field(default_factory=lambda: ["apachectl", "graceful"])
    public_url: str
    # the Host header of golive's probes of the site and of the containers (default: each URL's own): the
    # site's name when public_url is the new server's address, so that Django finds it in ALLOWED_HOSTS
    public_host: str | None = None
    # after a switch, how long public_url may take to answer healthy from the new colour before the swap
    # fails and is undone (the colour is already healthy: this is the proxy's part, so it fails fast)
    confirm_timeout: float = Field(15, gt=0)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s):// URL (e.g. \"https://example.org/\")")
        try:
            parts.port  # noqa: B018 (urlsplit reads the port only when asked: 99999 or "80x" raise here)
        except ValueError:
            raise ValueError(f"{url!r} has a port that is not one (1-65535)") from None
        if parts.port == 0:
            raise ValueError(f"{url!r} has a port that is not one (1-65535)")
        return url


class Check(Section):
    name: str
    url: str
    expect_status: int = 200
    expect_body: str | None = None
    expect_json: dict[str, Any] | None = None


class Verify(Section):
    checks: list[Check] = Field(default_factory=list)
    latency_p95_ms: float = Field(200, gt=0)
    requests: int = Field(20, ge=1)
    host_override: str | None = None


class Runbook(Section):
    steps: list[str] = Field(default_factory=lambda: [
        "preflight", "freeze", "backup", "sync", "swap", "dns-switch", "verify", "dns-verify"])
    auto_rollback: Literal["off", "on-failure", "on-verify-failure"] = "on-failure"


class Hooks(Section):
    before: dict[str, list[str]] = Field(default_factory=dict)
    after: dict[str, list[str]] = Field(default_factory=dict)


class GoliveConfig(Section):
    project: Project = Field(default_factory=Project)
    linode: Linode | None = None
    dns: Dns | None = None
    source: Source | None = None
    target: Target | None = None
    sync: Sync | None = None
    containers: Containers | None = None
    proxy: Proxy | None = None
    verify: Verify | None = None
    runbook: Runbook = Field(default_factory=Runbook)
    hooks: Hooks = Field(default_factory=Hooks)

    # Set by the loader: where the file was, so relative paths resolve beside it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: Path = Field(default=Path("golive.toml"), exclude=True)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.project.state_dir)

    def resolve(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def require(self, section: str) -> Any:
        """The named section, or a ConfigError saying it is needed and how to add it."""
        from golive.errors import ConfigError

        value = getattr(self, section)
        if value is None:
            raise ConfigError(f"{self.path} has no [{section}] section, which this command needs",
                              hint=f"add [{section}] (see `golive init` for a commented example)")
        return value
