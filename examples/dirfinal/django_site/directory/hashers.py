"""Password hashers of the Django project for users migrated from Flask (Werkzeug).

Werkzeug's default scrypt parameters (n=32768, r=8, p=1) need about 32 MiB, and OpenSSL refuses
that under its default memory limit, so Django's stock ``ScryptPasswordHasher`` (maxmem=0) fails
on every migrated scrypt hash. This subclass raises ``maxmem``; list it in ``PASSWORD_HASHERS``
(after the default hasher, so new passwords still use Django's default).

golive's sync is told this limit by the mapping's ``[options] scrypt_maxmem`` (the same number; its default
is this one): a Werkzeug hash needing more memory to check (about 128·n·r bytes: ``scrypt:131072:8:1`` and up)
is rejected, or made unusable, instead of failing every login of its user. Change both together.
"""

from django.contrib.auth.hashers import ScryptPasswordHasher


class WerkzeugScryptPasswordHasher(ScryptPasswordHasher):
    maxmem = 128 * 1024 * 1024
