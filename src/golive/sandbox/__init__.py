"""A complete local environment for rehearsals and tests: real servers on loopback where possible
(PostgreSQL, Docker, Apache), and emulators where the real thing cannot be reached (Linode)."""
