"""Werkzeug hashes made by Werkzeug itself, converted, then checked by Django's own hashers."""

from __future__ import annotations

import django
import pytest
from django.conf import settings
from werkzeug.security import generate_password_hash

from golive.sync.passwords import PasswordReject, hash_format, werkzeug_to_django

if not settings.configured:
    settings.configure(PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "examples.dirfinal.django_site.directory.hashers.WerkzeugScryptPasswordHasher",
    ])
    django.setup()

from django.contrib.auth.hashers import check_password


@pytest.mark.parametrize("method", ["pbkdf2:sha256:1000", "pbkdf2:sha1:1000", "scrypt"])
def test_converted_hash_checks_in_django(method: str) -> None:
    stored = generate_password_hash("correct horse ✓", method=method)
    converted = werkzeug_to_django(stored)
    assert check_password("correct horse ✓", converted)
    assert not check_password("wrong horse", converted)


def test_exact_encoding() -> None:
    stored = "pbkdf2:sha256:1000$salt$" + "00ff" * 16
    assert werkzeug_to_django(stored) == "pbkdf2_sha256$1000$salt$AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8="
    scrypt = "scrypt:32768:8:1$abc$" + "ab" * 64
    assert werkzeug_to_django(scrypt).startswith("scrypt$32768$abc$8$1$q6ur")


def test_stock_django_scrypt_fails_on_werkzeug_defaults_which_is_why_the_subclass_exists() -> None:
    from django.contrib.auth.hashers import ScryptPasswordHasher

    converted = werkzeug_to_django(generate_password_hash("pw"))
    with pytest.raises(ValueError, match="memory limit exceeded"):
        ScryptPasswordHasher().verify("pw", converted)


def test_formats_without_a_django_equivalent() -> None:
    for stored in (generate_password_hash("pw", method="pbkdf2:sha512:1000"), "sha1$abc$def", "md5$x$y", "plain$$pw"):
        with pytest.raises(PasswordReject, match="has no Django equivalent"):
            werkzeug_to_django(stored)
        unusable = werkzeug_to_django(stored, unknown="unusable")
        assert unusable.startswith("!") and not check_password("pw", unusable)
    for empty in (None, ""):
        assert werkzeug_to_django(empty).startswith("!")
    assert [hash_format(v) for v in ("pbkdf2:sha256:1$a$0f", "scrypt:1:8:1$a$0f", None, "md5$x$y")] == [
        "pbkdf2:sha256", "scrypt", "empty", "unknown:md5"]
