"""Settings of the new directory site (Django + React). The database comes from DATABASE_URL."""

import os
from urllib.parse import unquote, urlsplit

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "directory"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/directory"))
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": _url.path.lstrip("/"), "USER": unquote(_url.username or ""),
    "PASSWORD": unquote(_url.password or ""), "HOST": _url.hostname or "", "PORT": str(_url.port or ""),
}}

# Users migrated from Flask keep their Werkzeug hashes (converted by golive): pbkdf2 (sha256/sha1)
# and scrypt with Werkzeug's parameters, which need the raised memory limit of this subclass.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "directory.hashers.WerkzeugScryptPasswordHasher",
]
