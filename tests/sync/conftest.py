"""The example pair for the sync tests: a Flask source and a Django-migrated target (``dirfinal``)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from golive.sandbox.postgres import PostgresCluster
from tests.sync.test_sync import REPO, SECRET, Dir, django


@pytest.fixture(scope="session")
def dirfinal_made(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PostgresCluster) -> tuple[Path, str]:
    """Once a session: the Flask source written by the Flask models (30 users), and a database migrated by Django's
    own migrations; each test gets a copy of both (`dirfinal`), instead of seeding and migrating again (≈ 3 s)."""
    from examples.dirfinal.flask_app.seed import seed

    source = tmp_path_factory.mktemp("dirfinal") / "flask.db"
    seed(str(source), 30)
    name = f"dirfinal_migrated_{uuid.uuid4().hex[:8]}"
    migrated = django(Dir(source.parent, source, pg_cluster.create_database(name)), "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    return source, name


@pytest.fixture
def dirfinal(tmp_path: Path, pg_cluster: PostgresCluster, dirfinal_made: tuple[Path, str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Dir]:
    source = tmp_path / "flask.db"
    shutil.copyfile(dirfinal_made[0], source)
    name = f"directory_{uuid.uuid4().hex[:8]}"
    target_url = pg_cluster.create_database(name, template=dirfinal_made[1])
    d = Dir(tmp_path / "project", source, target_url)
    d.project.mkdir()
    config = d.project / "golive.toml"
    config.write_text(f"""[project]
name = "sync-test"

[source]
url = "sqlite:///{source}"

[target]
url = "env:GOLIVE_TEST_TARGET_URL"
backup_keep = 3

[sync]
mapping = "{REPO / 'examples' / 'dirfinal' / 'mapping.toml'}"
""")
    config.chmod(0o600)
    monkeypatch.chdir(d.project)
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", pg_cluster.url(name, password=SECRET))
    monkeypatch.delenv("GOLIVE_FAULT", raising=False)
    yield d
