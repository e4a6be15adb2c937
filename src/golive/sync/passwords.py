"""Werkzeug password hashes -> Django's, byte for byte the same derived key, re-encoded.

- ``pbkdf2:sha256:<iter>$salt$hex`` -> ``pbkdf2_sha256$<iter>$salt$<base64>`` (sha1 likewise);
- ``scrypt:n:r:p$salt$hex`` -> ``scrypt$n$salt$r$p$<base64>``. Django's stock scrypt hasher fails on
  Werkzeug's default n=32768 (OpenSSL's 32 MiB default memory limit): the Django project must use a
  hasher with a raised ``maxmem`` (examples/dirfinal ships one, with :data:`DJANGO_SCRYPT_MAXMEM`).
  A hash needing more memory than that, or with parameters OpenSSL refuses, would make every login
  of its user raise ValueError in Django: it is treated as a format with no Django equivalent;
- formats with no Django equivalent (``pbkdf2:sha512``, legacy ``sha1$``/``md5$``/``plain$``, a
  pbkdf2 without iterations) are rejected, or made unusable (``!``-prefixed) when the mapping's
  ``unknown_hashes = "unusable"``; NULL/empty hashes always become unusable. Reject reasons and the
  per-format counts name such a format ("unknown:md5", "unrecognised": :func:`hash_format`), never
  any of the value itself (a plaintext password, a digest, a salt).
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["DJANGO_SCRYPT_MAXMEM", "PasswordReject", "hash_format", "scrypt_memory", "werkzeug_to_django"]

DJANGO_SCRYPT_MAXMEM = 128 * 1024 * 1024
"""The ``maxmem`` of the Django project's scrypt hasher (examples/dirfinal's WerkzeugScryptPasswordHasher):
Django checks a password with ``hashlib.scrypt(..., maxmem=maxmem)``, which fails on a hash needing more."""


def scrypt_memory(n: int, r: int, p: int) -> int:
    """Bytes OpenSSL needs to check an scrypt hash, as it compares them with ``maxmem`` (EVP_PBE_scrypt):
    128·r·(n+2) for V, X and T, plus 128·r·p for B. Werkzeug's default (32768, 8, 1) needs 32 MiB + 3 KiB."""
    return 128 * r * (n + 2) + 128 * r * p


def _scrypt_refused(n: int, r: int, p: int) -> bool:
    """Parameters OpenSSL (hashlib) refuses whatever the memory limit: n not a power of 2 above 1, r or p 0,
    p·r of 2^30 or more, n of 2^(16·r) or more."""
    return n < 2 or n & (n - 1) != 0 or r < 1 or p < 1 or p * r >= 2**30 or (16 * r < 64 and n >= 2 ** (16 * r))


def _scrypt_problem(match: re.Match[str], maxmem: int) -> str | None:
    """Why Django could not check this scrypt hash (every login of its user would raise), or None."""
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    method = f"scrypt:{n}:{r}:{p}"
    if _scrypt_refused(n, r, p):
        return f"scrypt hash {method} has parameters OpenSSL refuses: every login of the user would fail"
    if scrypt_memory(n, r, p) > maxmem:
        return (f"scrypt hash {method} needs {scrypt_memory(n, r, p)} bytes of memory to check, over the maxmem of"
                f" the Django project's scrypt hasher ({maxmem}, [options].scrypt_maxmem): every login of the user"
                " would fail")
    return None

_PBKDF2 = re.compile(r"^pbkdf2:(?P<digest>sha1|sha256):(?P<iterations>\d+)\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]+)$")
_SCRYPT = re.compile(r"^scrypt:(?P<n>\d+):(?P<r>\d+):(?P<p>\d+)\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]+)$")


class PasswordReject(ValueError):
    """A hash that has no Django equivalent (and the mapping asked to reject such rows)."""


# names a format may be given (the value's own text never is: a plaintext password or a digest would be
# echoed into the reject file, the error line, the per-format counts and the journal)
_DIGESTS = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256", "sha3_224",
                      "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s", "sm3", "ripemd160"})
_LEGACY = _DIGESTS | {"plain"}  # Werkzeug before 2.3: method$salt$hash
_DJANGO = frozenset({"pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt", "unsalted_md5",
                     "unsalted_sha1", "crypt"})  # Django's own, method$…
_CRYPT = {"1": "md5-crypt", "2": "bcrypt", "2a": "bcrypt", "2b": "bcrypt", "2x": "bcrypt", "2y": "bcrypt",
          "5": "sha256-crypt", "6": "sha512-crypt", "7": "scrypt-crypt", "y": "yescrypt", "argon2i": "argon2",
          "argon2d": "argon2", "argon2id": "argon2", "pbkdf2": "pbkdf2", "pbkdf2-sha256": "pbkdf2-sha256",
          "pbkdf2-sha512": "pbkdf2-sha512"}  # modular crypt: $id$…


def hash_format(value: str | None, maxmem: int = DJANGO_SCRYPT_MAXMEM) -> str:
    """A short name of the hash's format, for the per-format counts of the sync report and reject reasons:
    "pbkdf2:sha256", "pbkdf2:sha1" or "scrypt" (converted; "scrypt (over maxmem)" or "scrypt (bad
    parameters)" when Django could not check it), "empty", "unknown:METHOD" for a method named by the value's
    prefix from a fixed list (md5, sha1, plain, pbkdf2:sha512, bcrypt, argon2, …), else "unrecognised".
    Never any of the value's own text."""
    if not value:
        return "empty"
    if not isinstance(value, str):
        return "unrecognised"
    if _PBKDF2.match(value):
        return f"pbkdf2:{value.split(':')[1]}"
    match = _SCRYPT.match(value)
    if match:
        n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
        if _scrypt_refused(n, r, p):
            return "scrypt (bad parameters)"
        return "scrypt (over maxmem)" if scrypt_memory(n, r, p) > maxmem else "scrypt"
    method = _method(value)
    return f"unknown:{method}" if method else "unrecognised"


def _method(value: str) -> str | None:
    """The hashing method the value's prefix names, when it names one of a fixed list."""
    if value.startswith("$"):
        return _CRYPT.get(value[1:].split("$", 1)[0])
    if value.startswith(("pbkdf2:", "scrypt:")):
        kind, *params = value.split("$", 1)[0].split(":")
        return f"pbkdf2:{params[0]}" if kind == "pbkdf2" and params and params[0] in _DIGESTS else kind
    head, dollar, _ = value.partition("$")
    return head if dollar and head in _LEGACY | _DJANGO else None


def _unusable(value: object) -> str:
    """Django's unusable password (``!`` and 40 characters, as ``make_password(None)``), derived from the stored
    value instead of drawn at random: the same on every sync, so a sync does not rewrite it each time and
    verification (``--verify-only --deep`` transforms the rows again) agrees. A one-way digest: it tells nothing
    of the value, and no password checks against it."""
    digest = hashlib.sha256(b"golive unusable password\0" + repr(value).encode("utf-8", "surrogatepass")).digest()
    return "!" + base64.urlsafe_b64encode(digest).decode("ascii")[:40]


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii").strip()


def werkzeug_to_django(value: str | None, unknown: str = "reject", maxmem: int = DJANGO_SCRYPT_MAXMEM) -> str:
    """Convert one stored hash. ``unknown``: "reject" (raise PasswordReject) or "unusable". ``maxmem``: the
    Django project's scrypt hasher's (a hash needing more could never be checked)."""
    if not value:
        return _unusable(value)
    match = _PBKDF2.match(value) if isinstance(value, str) else None  # (SQLite holds whatever it was given)
    if match:
        return f"pbkdf2_{match['digest']}${match['iterations']}${match['salt']}${_b64(match['hex'])}"
    match = _SCRYPT.match(value) if isinstance(value, str) else None
    problem = _scrypt_problem(match, maxmem) if match else None
    if match and problem is None:
        return f"scrypt${match['n']}${match['salt']}${match['r']}${match['p']}${_b64(match['hex'])}"
    if unknown == "unusable":
        return _unusable(value)
    raise PasswordReject(problem or f"password hash format {hash_format(value)!r} has no Django equivalent")
