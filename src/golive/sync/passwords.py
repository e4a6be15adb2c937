"""Werkzeug password hashes -> Django's, byte for byte the same derived key, re-encoded.

- ``pbkdf2:sha256:<iter>$salt$hex`` -> ``pbkdf2_sha256$<iter>$salt$<base64>`` (sha1 likewise);
- ``scrypt:n:r:p$salt$hex`` -> ``scrypt$n$salt$r$p$<base64>``. Django's stock scrypt hasher fails on
  Werkzeug's default n=32768 (OpenSSL's 32 MiB default memory limit): the Django project must use a
  hasher with a raised ``maxmem`` (examples/dirfinal ships one);
- formats with no Django equivalent (``pbkdf2:sha512``, legacy ``sha1$``/``md5$``/``plain$``, a
  pbkdf2 without iterations) are rejected, or made unusable (``!``-prefixed) when the mapping's
  ``unknown_hashes = "unusable"``; NULL/empty hashes always become unusable.
"""

from __future__ import annotations

import base64
import re
import secrets

__all__ = ["PasswordReject", "hash_format", "werkzeug_to_django"]

_PBKDF2 = re.compile(r"^pbkdf2:(?P<digest>sha1|sha256):(?P<iterations>\d+)\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]+)$")
_SCRYPT = re.compile(r"^scrypt:(?P<n>\d+):(?P<r>\d+):(?P<p>\d+)\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]+)$")


class PasswordReject(ValueError):
    """A hash that has no Django equivalent (and the mapping asked to reject such rows)."""


def hash_format(value: str | None) -> str:
    """A short name of the hash's format, for the per-format counts of the sync report."""
    if not value:
        return "empty"
    if _PBKDF2.match(value):
        return f"pbkdf2:{value.split(':')[1]}"
    if _SCRYPT.match(value):
        return "scrypt"
    head = re.split(r"[:$]", value, maxsplit=1)[0]
    return f"unknown:{head[:16]}"


def _unusable() -> str:
    return "!" + secrets.token_urlsafe(30)


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii").strip()


def werkzeug_to_django(value: str | None, unknown: str = "reject") -> str:
    """Convert one stored hash. ``unknown``: "reject" (raise PasswordReject) or "unusable"."""
    if not value:
        return _unusable()
    match = _PBKDF2.match(value)
    if match:
        return f"pbkdf2_{match['digest']}${match['iterations']}${match['salt']}${_b64(match['hex'])}"
    match = _SCRYPT.match(value)
    if match:
        return f"scrypt${match['n']}${match['salt']}${match['r']}${match['p']}${_b64(match['hex'])}"
    if unknown == "unusable":
        return _unusable()
    raise PasswordReject(f"password hash format {hash_format(value)!r} has no Django equivalent")
