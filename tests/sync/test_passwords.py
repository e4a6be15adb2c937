"""Werkzeug hashes made by Werkzeug itself, converted, then checked by Django's own hashers."""

from __future__ import annotations

import json

import django
import pytest
from django.conf import settings
from werkzeug.security import generate_password_hash

from golive.sync.passwords import DJANGO_SCRYPT_MAXMEM, PasswordReject, hash_format, scrypt_memory, werkzeug_to_django
from golive.sync.transforms import Reject
from tests.sync.test_sync import REPO, Dir, login

if not settings.configured:
    settings.configure(PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "examples.dirfinal.django_site.directory.hashers.WerkzeugScryptPasswordHasher",
    ])
    django.setup()

from django.contrib.auth.hashers import check_password
from examples.dirfinal.django_site.directory.hashers import WerkzeugScryptPasswordHasher


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
        # the same every time (it was drawn at random: each sync rewrote it, and --verify-only --deep always failed)
        assert werkzeug_to_django(stored, unknown="unusable") == unusable and len(unusable) == 41
    for empty in (None, ""):
        assert werkzeug_to_django(empty).startswith("!") and werkzeug_to_django(empty) == werkzeug_to_django(empty)
        assert not check_password("", werkzeug_to_django(empty))
    assert [hash_format(v) for v in ("pbkdf2:sha256:1$a$0f", "scrypt:16384:8:1$a$0f", None, "md5$x$y")] == [
        "pbkdf2:sha256", "scrypt", "empty", "unknown:md5"]


@pytest.mark.parametrize(("stored", "name"), [
    ("hunter2secret", "unrecognised"),  # a plaintext password: none of it in the name (it was 'unknown:hunter2secret')
    ("5f4dcc3b5aa765d61d8327deb882cf99", "unrecognised"),  # a bare md5 digest (it was 'unknown:5f4dcc3b5aa765d6')
    ("hunter2:secret$x", "unrecognised"),
    ("", "empty"),
    (generate_password_hash("pw", method="pbkdf2:sha512:1000"), "unknown:pbkdf2:sha512"),
    ("pbkdf2:sha256$salt$0f", "unknown:pbkdf2:sha256"),  # (no iterations)
    ("pbkdf2:hunter2:1000$salt$0f", "unknown:pbkdf2"),
    ("scrypt:32768:8:1$salt", "unknown:scrypt"),
    ("sha1$salt$" + "ab" * 20, "unknown:sha1"),  # Werkzeug's legacy salted digests
    ("plain$$hunter2secret", "unknown:plain"),
    ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "unknown:bcrypt"),
    ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "unknown:argon2"),
    ("$6$rounds=5000$salt$hash", "unknown:sha512-crypt"),
    ("$hunter2$secret", "unrecognised"),
    ("pbkdf2_sha256$600000$salt$aGFzaA==", "unknown:pbkdf2_sha256"),  # already Django's
    (12345, "unrecognised"),  # (SQLite keeps what it is given: it crashed the per-format count)
])
def test_a_format_name_is_a_known_method_or_unrecognised_never_part_of_the_value(stored: object, name: str) -> None:
    assert hash_format(stored) == name  # type: ignore[arg-type]
    if name != "empty":
        with pytest.raises(PasswordReject) as caught:
            werkzeug_to_django(stored)  # type: ignore[arg-type]
        assert str(caught.value) == f"password hash format {name!r} has no Django equivalent"


@pytest.mark.parametrize(("n", "r", "p"), [(16, 1, 1), (16384, 8, 1), (32768, 8, 1), (131072, 8, 1), (1024, 1, 16),
                                           (65536, 8, 2)])
def test_the_memory_an_scrypt_hash_needs_is_the_least_maxmem_openssl_accepts(n: int, r: int, p: int) -> None:
    """OpenSSL's rule (and so hashlib's, and Django's): 128·r·(n+2) for V, X and T, plus 128·r·p for B."""
    import hashlib

    need = scrypt_memory(n, r, p)
    assert need == 128 * r * (n + 2) + 128 * r * p
    hashlib.scrypt(b"pw", salt=b"salt", n=n, r=r, p=p, maxmem=need, dklen=16)
    with pytest.raises(ValueError, match="memory limit exceeded"):
        hashlib.scrypt(b"pw", salt=b"salt", n=n, r=r, p=p, maxmem=need - 1, dklen=16)


def test_golive_knows_the_maxmem_of_the_example_projects_scrypt_hasher() -> None:
    assert WerkzeugScryptPasswordHasher.maxmem == DJANGO_SCRYPT_MAXMEM == 128 * 1024 * 1024


def test_an_scrypt_hash_over_the_hashers_maxmem_is_rejected_not_a_crash_at_every_login() -> None:
    fits = generate_password_hash("pw", method="scrypt:65536:8:1")  # 64 MiB: within the hasher's limit
    assert (hash_format(fits), check_password("pw", werkzeug_to_django(fits))) == ("scrypt", True)
    stored = generate_password_hash("pw", method="scrypt:131072:8:1")  # 128 MiB and 3 KiB: just over it
    scrypt_hasher = WerkzeugScryptPasswordHasher()
    with pytest.raises(ValueError, match="memory limit exceeded"):  # what every login of the user did (a 500)
        scrypt_hasher.verify("pw", "scrypt$131072$" + stored.split("$", 1)[1].replace("$", "$8$1$", 1))
    assert hash_format(stored) == "scrypt (over maxmem)"
    with pytest.raises(PasswordReject) as caught:
        werkzeug_to_django(stored)
    assert str(caught.value) == ("scrypt hash scrypt:131072:8:1 needs 134220800 bytes of memory to check, over the"
                                 " maxmem of the Django project's scrypt hasher (134217728, [options].scrypt_maxmem):"
                                 " every login of the user would fail")
    unusable = werkzeug_to_django(stored, unknown="unusable")
    assert unusable.startswith("!") and not check_password("pw", unusable)


def _password_transform(tmp_path, options: str):  # type: ignore[no-untyped-def]
    from golive.sync.mapping import load_mapping

    (tmp_path / "mapping.toml").write_text(f'[options]\n{options}\n[[table]]\nsource = "user"\ntarget = "auth_user"\n'
                                           'key = "id"\n[table.columns]\nid = "id"\npassword = { from = "password_hash",'
                                           ' transform = "werkzeug_to_django" }\n')
    [table] = load_mapping(tmp_path / "mapping.toml").tables
    return next(c for c in table.columns if c.target == "password").transform


def test_the_scrypt_maxmem_option_is_the_django_projects_hasher_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A project whose scrypt hasher allows 256 MiB had every 128 MiB+ hash rejected (or made unusable) though its
    users could log in; one that allows 16 MiB had Werkzeug's default hashes (32 MiB) carried over, and every login
    of those users failed."""
    heavy = generate_password_hash("pw", method="scrypt:131072:8:1")  # 128 MiB and 3 KiB

    class Roomier(WerkzeugScryptPasswordHasher):
        maxmem = 256 * 1024 * 1024

    roomy = _password_transform(tmp_path, "scrypt_maxmem = 268435456")
    converted = roomy(heavy)
    assert roomy.format_of(heavy) == "scrypt" and Roomier().verify("pw", converted)
    tight = _password_transform(tmp_path, "scrypt_maxmem = 16777216")
    default = generate_password_hash("pw", method="scrypt")  # scrypt:32768:8:1, 32 MiB
    assert tight.format_of(default) == "scrypt (over maxmem)"
    with pytest.raises(Reject, match=r"over the maxmem of the Django project's scrypt hasher \(16777216,"
                                     r" \[options\].scrypt_maxmem\)"):
        tight(default)
    from golive.errors import ConfigError

    with pytest.raises(ConfigError, match="scrypt_maxmem"):
        _password_transform(tmp_path, "scrypt_maxmem = 1000")


@pytest.mark.parametrize("method", ["scrypt:1000:8:1", "scrypt:1:8:1", "scrypt:16384:0:1", "scrypt:16384:8:0", "scrypt:65536:1:1",
                                    "scrypt:16:1:1073741824"])
def test_an_scrypt_hash_whose_parameters_openssl_refuses_is_rejected(method: str) -> None:
    stored = f"{method}$salt${'ab' * 32}"
    assert hash_format(stored) == "scrypt (bad parameters)"
    with pytest.raises(PasswordReject, match=f"^scrypt hash {method} has parameters OpenSSL refuses"):
        werkzeug_to_django(stored)


def test_a_user_whose_scrypt_hash_is_over_maxmem_is_made_unusable_and_counted_by_sync(dirfinal: Dir,
                                                                                    cli) -> None:
    mapping = (REPO / "examples" / "dirfinal" / "mapping.toml").read_text()
    (dirfinal.project / "mapping.toml").write_text(mapping.replace('unknown_hashes = "reject"',
                                                                   'unknown_hashes = "unusable"'))
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(str(REPO / "examples" / "dirfinal" / "mapping.toml"), "mapping.toml"))
    heavy = generate_password_hash("pw-heavy", method="scrypt:131072:8:1")
    dirfinal.source_sql(f"UPDATE user SET password_hash = '{heavy}', username = 'heavy' WHERE id = 3")
    synced = cli("-v", "sync", "--yes")
    assert synced.exit_code == 0, synced.stderr
    counts = next(line for line in synced.lines if "auth_user: password hashes by format: " in line)
    assert counts.endswith("password hashes by format: pbkdf2:sha256 20, scrypt 9, scrypt (over maxmem) 1"), counts
    assert not login(dirfinal, "heavy", "pw-heavy")  # (it raised ValueError: memory limit exceeded in authenticate)
    # its unusable password is the same each time: a full sync leaves it be, a deep verification agrees (it was
    # drawn at random: rewritten by every full sync, and `--verify-only --deep` failed on it, exit 1)
    deep = cli("sync", "--verify-only", "--deep")
    assert deep.exit_code == 0, deep.stdout + deep.stderr
    again = json.loads(cli("sync", "--yes", "--full", "--json").stdout.splitlines()[-1])
    assert [t["updated"] for t in again["tables"] if t["table"] == "auth_user"] == [0]


SECRETS = {4: "hunter2secret", 5: "5f4dcc3b5aa765d61d8327deb882cf99", 6: "plain$$hunter2secret",
           7: "sha1$s4ltfrag$" + "c0ffee" * 6 + "beef", 8: "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}
FRAGMENTS = ("hunter2", "5f4dcc3b", "s4ltfrag", "c0ffee", "R9h/cIPz", "cIPz0gi")


def test_no_output_file_or_journal_holds_any_part_of_an_unconvertible_hash(dirfinal: Dir, cli) -> None:
    """A plaintext password or a digest in password_hash was echoed ('unknown:hunter2secret') into the reject
    file, the error line, the per-format counts, --json and the journal."""
    for user, stored in SECRETS.items():
        dirfinal.source_sql(f"UPDATE user SET password_hash = '{stored}' WHERE id = {user}")
    said = []
    for args in (("-v", "sync", "--yes"), ("sync", "--yes", "--json"), ("sync", "--dry-run")):
        rejected = cli(*args)
        assert rejected.exit_code == (0 if "--dry-run" in args else 1), rejected
        said += [rejected.stdout, rejected.stderr]
    assert "first: table auth_user, key id=4, column password: password hash format 'unrecognised' has no Django" \
        " equivalent" in said[1]
    mapping = (REPO / "examples" / "dirfinal" / "mapping.toml").read_text()
    (dirfinal.project / "mapping.toml").write_text(mapping.replace('unknown_hashes = "reject"',
                                                                   'unknown_hashes = "unusable"'))
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(str(REPO / "examples" / "dirfinal" / "mapping.toml"), "mapping.toml"))
    for args in (("-v", "sync", "--yes"), ("-v", "sync", "--yes", "--full", "--json"), ("-v", "sync", "--verify-only"),
                 ("history",), ("history", "--json")):
        shown = cli(*args)
        assert shown.exit_code == 0, shown
        said += [shown.stdout, shown.stderr]
    counts = [line for text in said for line in text.splitlines() if "auth_user: password hashes by format:" in line]
    assert len(counts) == 2 and counts[0].endswith("password hashes by format: pbkdf2:sha256 16, scrypt 9,"
                                                   " unknown:bcrypt 1, unknown:plain 1, unknown:sha1 1, unrecognised 2"), counts
    runs = json.loads(said[-2])["runs"]
    said += [cli("history", run["id"]).stdout for run in runs]
    files = [p for p in (dirfinal.project / ".golive").rglob("*") if p.is_file()]
    assert any(p.name == "journal.db" for p in files) and any(p.suffix == ".ndjson" for p in files)
    for fragment in FRAGMENTS:
        assert not [text for text in said if fragment in text], fragment
        assert not [p for p in files if fragment.encode() in p.read_bytes()], fragment
