"""Secret references (``env:NAME``, ``file:PATH``) and the redactor that keeps their values out of
every output, log line, journal row and report.

A secret is never written in ``golive.toml``: the config holds a *reference*, resolved only when a
gateway needs the value. Each resolved value is registered with :data:`REDACTOR`, which every
output path (console, JSON, journal, reports) passes text through.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from golive.errors import ConfigError

__all__ = ["RECORD_SHORTEST", "REDACTOR", "Redactor", "SecretRef", "kept_secret", "plain", "redact", "redact_url",
           "sqlite_beside", "userinfo_problem"]

MASK = "***"
# a URL's password runs to the last "@" of the URL: a password written with "@" or "/" unencoded is masked whole
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S+)@")
# a database URL's password written with a space in it: to the line's last "@" (more is masked, never less)
_DB_URL_PASSWORD = re.compile(r"(?P<scheme>postgres(?:ql)?://)(?P<user>[^:/@\s]*):(?P<pw>[^\n]*\s[^\n]*)@")
# a password as a parameter: a URL's query (``?user=u&password=…``) or a libpq keyword string
# (``host=h password=…``, also quoted: ``password='a b'``)
_PARAM_PASSWORD = re.compile(r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'?|[^&\s'#]+)", re.IGNORECASE)


class Redactor:
    """Masks every registered secret value, and any password embedded in a URL."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) >= 4:  # masking "a" everywhere would wreck output without hiding anything
            self._values.add(value)

    def __call__(self, text: str, shortest: int = 4) -> str:
        """``text`` with the secrets masked; ``shortest``: leave registered values shorter than that (see
        ``RECORD_SHORTEST``)."""
        for value in sorted(self._values, key=len, reverse=True):
            if len(value) >= shortest and value in text:
                text = text.replace(value, MASK)
        text = _DB_URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        return _PARAM_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


REDACTOR = Redactor()


# The journal's step data (what an undo reads back: an upstream URL, a backup's path, a record's target) is
# secret-free by construction — containers' environments are kept apart, URLs carry no password — and is
# masked only as a backstop: there a short registered value ("http", "golive" as a weak DB password) would
# more likely be ordinary text the undo needs than a secret, and masking it broke the undo.
RECORD_SHORTEST = 8


def redact(value: object, shortest: int = 4) -> object:
    """Redact strings anywhere inside a JSON-like value."""
    if isinstance(value, str):
        return REDACTOR(value, shortest)
    if isinstance(value, dict):
        return {k: redact(v, shortest) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, shortest) for v in value]
    return value


def redact_url(url: str) -> str:
    return REDACTOR(url)


def url_has_password(url: str) -> bool:
    return bool(_URL_PASSWORD.search(url) or _DB_URL_PASSWORD.search(url) or _PARAM_PASSWORD.search(url))


def url_passwords(url: str) -> list[str]:
    """The passwords a database URL or keyword string carries, as written and as libpq reads them."""
    from urllib.parse import unquote

    found = [m["pw"] for pattern in (_DB_URL_PASSWORD, _URL_PASSWORD) for m in pattern.finditer(url)]
    found += [m["pw"][1:-1].replace("\\'", "'") if m["pw"].startswith("'") else m["pw"]
              for m in _PARAM_PASSWORD.finditer(url)]
    return [form for pw in found for form in dict.fromkeys((pw, unquote(pw)))]


def sqlite_beside(url: str, base: str | Path) -> str:
    """``url`` with a relative ``sqlite:///`` path (and ``~``) made absolute from ``base``, the config's folder:
    found from wherever golive was started, it named another file (a sync then deleted rows it did not find)."""
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url.removeprefix("sqlite:///")).expanduser()
    if not path.is_absolute() and str(base):
        path = Path(base) / path
    return f"sqlite:///{path}"


def check_private(path: Path, what: str) -> None:
    """Refuse a file that group or others can read: it holds, or points at, secrets."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} {path} is readable by group/others (mode {stat.S_IMODE(mode):04o})",
            hint=f"run: chmod 600 {path}",
        )


# what a database URL's user name or password cannot hold as it is: libpq ends the user-info at the first "@" or
# "/" (it would read another host, or quote the rest of the password in its error), and "%" starts an escape
_UNSAFE_USERINFO = re.compile(r"[@/?#\s]|%(?![0-9A-Fa-f]{2})")
PERCENT_ENCODE = "percent-encode them (@ → %40, / → %2F, : → %3A, % → %25, space → %20)"


def userinfo_problem(url: str) -> str | None:
    """Why a ``postgresql://`` URL's user name or password cannot be read as written, or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return None
    at, query = rest.rfind("@"), rest.find("?")
    if at < 0 or 0 <= query < rest.find("@"):  # (no user-info; an "@" in the query string only)
        return None
    user, _, password = rest[:at].partition(":")
    for part, text in (("user name", user), ("password", password)):
        if _UNSAFE_USERINFO.search(text):
            return f"the {part} holds characters a URL cannot carry as they are"
    return None


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret: ``env:NAME`` or ``file:PATH``. ``str()`` never shows the value.

    ``key_path``: the config key it was read from (named by every error); ``base_dir``: the config's folder,
    where a relative ``sqlite:///`` path in the value is found (as every other path of the config is)."""

    ref: str
    key_path: str = ""
    base_dir: str = ""

    @classmethod
    def parse(cls, ref: str, key_path: str = "") -> SecretRef:
        kind, _, rest = ref.partition(":")
        if kind not in ("env", "file") or not rest:
            raise ValueError('must be a reference "env:NAME" or "file:PATH", never the secret itself')
        return cls(ref, key_path)

    @property
    def kind(self) -> str:
        return self.ref.partition(":")[0]

    @property
    def target(self) -> str:
        return self.ref.partition(":")[2]

    def available(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why the reference does not resolve here (unset, missing, empty), or None; read-only."""
        try:
            self._read()
        except ConfigError as exc:
            return exc.message
        return None

    def peek(self) -> str:
        """The value, not registered with the redactor and with no check of the file's mode (ConfigError when it
        does not resolve)."""
        return self._read()

    def mask(self) -> None:
        """Register the value with the redactor if it resolves here (a URL's password only, as :meth:`resolve`
        does), with no check of the file's mode: a config's secrets are masked as it loads, before any gateway
        resolves them — a command golive runs may print one."""
        with contextlib.suppress(ConfigError):  # (one that does not resolve here is said when a command uses it)
            _mask(self._read(), self.key_path.endswith("url"))

    def _read(self) -> str:
        where = f" ({self.key_path})" if self.key_path else ""
        if self.kind == "env":
            raw = os.environ.get(self.target)
            if raw is None:
                raise ConfigError(f"environment variable {self.target} is not set{where}",
                                  hint=f"export {self.target}=… before running golive")
            value = raw.strip()  # (a trailing newline from `$(cat …)` or an editor is no part of a secret)
            if not value:
                raise ConfigError(f"environment variable {self.target} is empty{where}",
                                  hint=f"export {self.target}=… (the {self._what()}) before running golive")
            return value
        path = Path(self.target)
        if not path.is_file():
            raise ConfigError(f"secret file {path} does not exist{where}", hint="create it with mode 600")
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the secret file {path}{where}: {getattr(exc, 'strerror', None) or exc}",
                              hint="check its owner and permissions (mode 600)") from None
        if not value:
            raise ConfigError(f"secret file {path} is empty{where}", hint=f"put the {self._what()} in it")
        return value

    def _what(self) -> str:
        return "token" if self.key_path.endswith("token") else "URL" if self.key_path.endswith("url") else "secret"

    def resolve(self, *, url: bool = False) -> str:
        """The secret's value, registered with the redactor. ``url=True``: the value is a URL whose
        password is the secret (only that part is masked, so host and database stay readable)."""
        if self.kind == "file" and Path(self.target).is_file():
            check_private(Path(self.target), "secret file")
        value = self._read()
        _mask(value, url)
        if not url:
            return value
        problem = userinfo_problem(value)
        if problem:
            source = self.target if self.kind == "env" else f"file {self.target}"
            raise ConfigError(f"{self.key_path or 'the URL'} ({source}): {problem}", hint=PERCENT_ENCODE)
        return sqlite_beside(value, self.base_dir)

    def __str__(self) -> str:
        return self.ref

    def __repr__(self) -> str:
        return f"SecretRef({self.ref!r})"


def _mask(value: str, url: bool) -> None:
    """A secret's value into the redactor: a URL's password in each spelling, else the whole value."""
    for part in url_passwords(value) if url else [value]:
        REDACTOR.add(part)


# The names Django's error reports hide the values of (SafeExceptionReporterFilter.hidden_settings) ...
_SECRET_NAME = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE", re.IGNORECASE)
# ... but not these values: a port, a count or a flag masked in every line would hide nothing and garble the
# output (a password of digits alone is a number too: give it as a reference)
_PLAIN = re.compile(r"[+-]?\d+(\.\d+)?|true|false|yes|no|on|off|none|null", re.IGNORECASE)


def kept_secret(name: str, value: str) -> bool:
    """Whether an application variable (an env_file line, a ``[containers].env`` literal) holds a secret to mask
    everywhere: a secret-looking name, and a value that is not plain. Not every value: masking
    INTERNAL_IPS=127.0.0.1 or SITE_SCHEME=http everywhere corrupted the upstream text the journal keeps for a
    swap's undo ("http://***:8001"), and the rollback then pointed Apache at nothing."""
    return bool(_SECRET_NAME.search(name)) and not _plain(value.strip())


def plain(value: str) -> bool:
    """A value no one keeps secret whatever its variable is called (see ``_plain``)."""
    return _plain(value.strip())


def _plain(value: str) -> bool:
    """A value no one keeps secret, which masking would only garble wherever it appears (an upstream URL the
    undo needs): a number, a boolean, an IP address (API_HOST=127.0.0.1), a URL without a password."""
    import ipaddress
    from urllib.parse import urlsplit

    if _PLAIN.fullmatch(value) or re.fullmatch("[A-Za-z]{1,7}", value):  # (a short word: API_SCHEME=http)
        return True
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and parts.password is None
